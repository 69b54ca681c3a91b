"""`make lint`'s sqlfluff cache: only changed SQL is linted, and nothing that failed is
remembered as passed (billing/sql_lint.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from billing import sql_lint


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict:
    """A project of two models and a macro, with sqlfluff replaced by a recorder."""
    (tmp_path / "models").mkdir()
    (tmp_path / "macros").mkdir()
    (tmp_path / "models" / "a.sql").write_text("select 1 as a\n")
    (tmp_path / "models" / "b.sql").write_text("select 2 as b\n")
    (tmp_path / "macros" / "m.sql").write_text("{% macro m() %}1{% endmacro %}\n")
    (tmp_path / ".sqlfluff").write_text("[sqlfluff]\ndialect = duckdb\n")
    runs: list[list[str]] = []
    answer = {"returncode": 0}

    def fake_run(command, cwd, check):
        assert cwd == tmp_path and command[1:4] == ["-m", "sqlfluff", "lint"]
        runs.append([arg for arg in command[4:] if arg.endswith(".sql")])
        return subprocess.CompletedProcess(command, answer["returncode"])

    monkeypatch.setattr(sql_lint, "PROJECT_DIR", tmp_path)
    monkeypatch.setattr(sql_lint.subprocess, "run", fake_run)
    monkeypatch.delenv("CI", raising=False)
    return {"root": tmp_path, "runs": runs, "answer": answer}


def lint(*extra: str) -> int:
    return sql_lint.main(["models", "macros", *extra])


def test_only_the_files_changed_since_they_passed_are_linted(project, capsys):
    root, runs = project["root"], project["runs"]
    assert lint() == 0
    assert runs == [["macros/m.sql", "models/a.sql", "models/b.sql"]]
    assert lint() == 0
    assert len(runs) == 1  # nothing changed: sqlfluff did not run
    assert "all 3 SQL files passed before, unchanged" in capsys.readouterr().out
    (root / "models" / "b.sql").write_text("select 3 as b\n")
    assert lint() == 0
    assert runs[-1] == ["models/b.sql"]
    (root / "models" / "c.sql").write_text("select 4 as c\n")
    assert lint() == 0
    assert runs[-1] == ["models/c.sql"]


def test_a_changed_macro_or_config_lints_every_file_again(project):
    root, runs = project["root"], project["runs"]
    assert lint() == 0
    (root / "macros" / "m.sql").write_text("{% macro m() %}2{% endmacro %}\n")
    assert lint() == 0
    assert runs[-1] == ["macros/m.sql", "models/a.sql", "models/b.sql"]
    (root / ".sqlfluff").write_text("[sqlfluff]\ndialect = duckdb\nmax_line_length = 80\n")
    assert lint() == 0
    assert runs[-1] == ["macros/m.sql", "models/a.sql", "models/b.sql"]
    (root / "models" / "_models.yml").write_text("version: 2\n")
    assert lint() == 0
    assert len(runs[-1]) == 3


def test_a_failed_lint_is_not_remembered(project):
    root, runs, answer = project["root"], project["runs"], project["answer"]
    assert lint() == 0
    (root / "models" / "a.sql").write_text("SELECT 1 AS A\n")
    answer["returncode"] = 1
    assert lint() == 1
    assert lint() == 1
    assert runs[-2:] == [["models/a.sql"], ["models/a.sql"]]
    answer["returncode"] = 0
    assert lint() == 0
    assert lint() == 0
    assert runs[-1] == ["models/a.sql"] and len(runs) == 4


def test_ci_and_no_cache_lint_every_file(project, monkeypatch):
    runs = project["runs"]
    assert lint() == 0
    assert lint("--no-cache") == 0
    monkeypatch.setenv("CI", "true")
    assert lint() == 0
    assert runs[1] == runs[2] == ["macros/m.sql", "models/a.sql", "models/b.sql"]


def test_an_unreadable_cache_is_an_empty_one(project):
    root, runs = project["root"], project["runs"]
    (root / "target").mkdir()
    (root / sql_lint.CACHE).write_text("{not json")
    assert lint() == 0
    assert runs == [["macros/m.sql", "models/a.sql", "models/b.sql"]]


def test_folders_without_sql_are_an_error(project, capsys):
    assert sql_lint.main(["seeds"]) == 1
    assert "no .sql file under seeds" in capsys.readouterr().err
    assert project["runs"] == []
