"""The `billing` command: help everywhere, one-line errors, never a traceback for bad input."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from orchestration.build import BuildError, parse_as_of
from orchestration.settings import PROJECT_DIR

BILLING = [sys.executable, "-m", "orchestration.cli"]


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*BILLING, *args],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.parametrize(
    "command", ["generate", "ingest", "build", "invoices", "quality", "alerts", "backfill"]
)
def test_every_subcommand_has_help(command):
    result = run(command, "--help")
    assert result.returncode == 0
    assert f"usage: billing {command}" in result.stdout


def test_missing_landing_folder_is_one_line_without_traceback(tmp_path):
    result = run(
        "ingest", str(tmp_path / "nowhere"), env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb")}
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"billing ingest: error: landing path does not exist: {tmp_path / 'nowhere'}"
    ]


def test_bad_as_of_is_one_line_without_traceback(tmp_path):
    result = run(
        "build", "--as-of", "next tuesday", env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb")}
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "--as-of must be an ISO 8601 date or timestamp" in result.stderr


def test_seeds_outside_the_project_are_refused(tmp_path):
    result = run(
        "build",
        env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb"), "BILLING_SEEDS_DIR": str(tmp_path)},
    )
    assert result.returncode == 2
    assert "BILLING_SEEDS_DIR must be a folder inside the project" in result.stderr


def test_bad_event_count_is_rejected_by_the_parser():
    result = run("generate", "--events", "many")
    assert result.returncode == 2
    assert "expected a whole number" in result.stderr


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-05", "2026-11-05T00:00:00Z"),
        ("2026-11-05T10:30:00+02:00", "2026-11-05T08:30:00Z"),
        ("2026-11-05T10:30:00Z", "2026-11-05T10:30:00Z"),
        ("2026-11-05 23:59:59.999", "2026-11-05T23:59:59Z"),
    ],
)
def test_as_of_is_normalized_to_utc(text, expected):
    assert parse_as_of(text) == expected


def test_as_of_rejects_nonsense():
    with pytest.raises(BuildError):
        parse_as_of("soon")


def test_a_locked_warehouse_is_one_line_without_traceback(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({str(warehouse)!r}); "
            "print('ready', flush=True); time.sleep(60)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        result = run("build", env={"BILLING_WAREHOUSE": str(warehouse)})
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "cannot open warehouse" in result.stderr


def test_quality_without_a_warehouse_is_one_line(tmp_path):
    result = run("quality", env={"BILLING_WAREHOUSE": str(tmp_path / "w.duckdb")})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"billing quality: error: no warehouse at {tmp_path / 'w.duckdb'}: "
        "run `billing build` first"
    ]


def test_quality_rejects_a_bad_day():
    result = run("quality", "--day", "2026-02-30")
    assert result.returncode == 2
    assert "expected YYYY-MM-DD, got '2026-02-30'" in result.stderr


def test_backfill_rejects_a_backward_range_in_one_line():
    result = run("backfill", "daily", "2026-09-02", "2026-09-01")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "billing backfill: error: the range ends (2026-09-01) before it starts (2026-09-02)"
    ]
