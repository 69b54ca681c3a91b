"""sqlfluff over the project's SQL, skipping the files that passed and have not changed.

sqlfluff with the dbt templater takes 2-4 s a file here (parsing jinja-heavy SQL, then
the rules), about 140 s for the whole project on two processes, and it keeps no cache:
every `make lint` (so every `make test`) paid it again for one edited model. ruff keeps a
cache; this keeps one for sqlfluff. `target/sqlfluff-passed.json` holds a key per file
that linted clean. A key hashes the file's path and text and everything its templating
reads (the macros, the YAML of models, seeds and snapshots, the dbt and sqlfluff
configuration, the lock file that pins sqlfluff and dbt), so editing a macro or a rule
lints every file again. With `CI=true` or `--no-cache` every file is linted.

    python -m billing.sql_lint models tests macros [--processes N] [--no-cache]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from billing.settings import PROJECT_DIR

CACHE = Path("target") / "sqlfluff-passed.json"
# What templating and the rules read besides the file itself, relative to the project.
CONTEXT = (
    "macros/**/*.sql",
    "models/**/*.yml",
    "seeds/**/*.yml",
    "snapshots/**/*.yml",
    "snapshots/**/*.sql",
    "dbt_project.yml",
    "profiles.yml",
    "selectors.yml",
    ".sqlfluff",
    "uv.lock",
)


def sql_files(root: Path, folders: list[str]) -> list[Path]:
    """Every .sql file under `folders`, as paths relative to `root`, in a stable order."""
    return sorted(
        path.relative_to(root) for folder in folders for path in (root / folder).rglob("*.sql")
    )


def context_digest(root: Path) -> str:
    """One hash of every file the templating or the rules read (CONTEXT), names and text."""
    digest = hashlib.sha256()
    for path in sorted({path for pattern in CONTEXT for path in root.glob(pattern)}):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_key(root: Path, path: Path, context: str) -> str:
    """The key of one file's lint result: its path and text under one context."""
    text = (root / path).read_bytes()
    return hashlib.sha256(f"{context}\0{path}\0".encode() + text).hexdigest()


def to_lint(keys: dict[Path, str], passed: set[str]) -> list[Path]:
    """The files whose key has not passed: changed, new, or under a changed context."""
    return [path for path, key in keys.items() if key not in passed]


def read_passed(cache: Path) -> set[str]:
    """The keys that passed before; a missing or unreadable cache is an empty one."""
    try:
        return set(json.loads(cache.read_text(encoding="utf-8"))["passed"])
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def write_passed(cache: Path, keys: set[str]) -> None:
    """Replace the cache in one rename, so a killed lint leaves the old one whole."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".json.partial")
    partial.write_text(json.dumps({"passed": sorted(keys)}, indent=0), encoding="utf-8")
    partial.replace(cache)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m billing.sql_lint")
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--no-cache", action="store_true", help="lint every file")
    args = parser.parse_args(argv)
    root = PROJECT_DIR
    files = sql_files(root, args.folders)
    if not files:
        print(f"sqlfluff: no .sql file under {' '.join(args.folders)}", file=sys.stderr)
        return 1
    context = context_digest(root)
    keys = {path: file_key(root, path, context) for path in files}
    use_cache = not args.no_cache and os.environ.get("CI", "").lower() != "true"
    passed = read_passed(root / CACHE) if use_cache else set()
    pending = to_lint(keys, passed)
    if not pending:
        print(
            f"sqlfluff: all {len(files)} SQL files passed before, unchanged ({CACHE}); "
            "`make lint LINT_ALL=1` lints them again"
        )
        return 0
    print(f"sqlfluff: linting {len(pending)} of {len(files)} SQL files", flush=True)
    command = [sys.executable, "-m", "sqlfluff", "lint", *map(str, pending)]
    command += ["--disable-progress-bar", "--nocolor", "--processes", str(args.processes)]
    returncode = subprocess.run(command, cwd=root, check=False).returncode
    if returncode == 0:
        # Every file now passed: the ones skipped before, the ones just linted. Keys of
        # files since deleted or edited drop out.
        write_passed(root / CACHE, set(keys.values()))
    return returncode


if __name__ == "__main__":
    sys.exit(main())
