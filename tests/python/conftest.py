"""Shared fixtures: an isolated warehouse, landing folder and seeds folder per scenario."""

from __future__ import annotations

import csv
import os
import shutil
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from billing.seeds import RULES, prepare_seeds_dir, seed_columns, seed_path
from billing.settings import PROJECT_DIR, Settings, quiet_environment

quiet_environment()

# `make test` runs two pytest workers (pytest-xdist, one per core). Each gets its own dbt
# target folder, set before anything imports the Dagster project, so their dbt runs never
# share a manifest or a partial parse.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ.setdefault("DBT_TARGET_PATH", f"target/pytest-{os.environ['PYTEST_XDIST_WORKER']}")

# Workers take whole groups of tests: a module, or modules that share a session-built
# scenario (built once per worker). Groups run longest first (measured: `pytest
# --durations`), so the two workers finish close together; the rest keep file order.
SHARED_GROUPS = {
    "test_orchestration": "built_scenarios",
    "test_quality_gates": "built_scenarios",
}
# Measured on 2026-12-06 (seconds of one worker): incremental staging 299 with its nine
# killed builds (about 100 locally, where eight of them are opt-in fault injection), the
# shared scenarios with the Dagster jobs 293, the edges 115, the lifecycle 69; every other
# group is under 35.
LONGEST_FIRST = (
    "test_incremental_staging",
    "built_scenarios",
    "test_billing_edges",
    "test_invoice_lifecycle",
)


def worker_group(item: pytest.Item) -> str:
    """The group of workers' scheduling a test belongs to: its module or a shared one."""
    module = item.module.__name__.rsplit(".", 1)[-1]
    return SHARED_GROUPS.get(module, module)


# Marked as each test is collected, not in pytest_collection_modifyitems: pytest-xdist's
# own modifyitems hook turns the `xdist_group` marks into the `@group` test-id suffix that
# `--dist loadgroup` schedules by, and it ran before this conftest's (tryfirst or not), so
# every module was split across both workers and each worker built the module's scenario
# again: the edge, lifecycle and Dagster set-ups ran twice (measured on 2026-12-06).
def pytest_itemcollected(item: pytest.Item) -> None:
    """Mark each test with its worker group."""
    item.add_marker(pytest.mark.xdist_group(worker_group(item)))


def faults_run() -> bool:
    """Whether fault-injection tests run: always in CI, locally only when asked.

    They are the slowest cases (each kills a build in its own process, then builds again),
    so the local loop stays short while CI still runs every one of them.
    """
    return os.environ.get("CI", "").lower() == "true" or os.environ.get("BILLING_FAULTS") == "1"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip fault injection unless asked; put the longest groups first (stable order)."""
    if not faults_run():
        skip = pytest.mark.skip(reason="fault injection: CI=true or make test-faults")
        for item in items:
            if item.get_closest_marker("faults"):
                item.add_marker(skip)

    def rank(item: pytest.Item) -> int:
        group = worker_group(item)
        return LONGEST_FIRST.index(group) if group in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)


# dbt only reads seeds from inside the project (see billing.warehouse.dbt.seeds_path_for_dbt).
TEST_SEEDS_ROOT = PROJECT_DIR / "target" / "pytest-seeds"


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A fresh warehouse, landing folder and seeds folder, pointed to by the environment."""
    root = tmp_path_factory.mktemp("billing")
    seeds_dir = TEST_SEEDS_ROOT / uuid.uuid4().hex[:12]
    settings = Settings(
        warehouse=root / "warehouse.duckdb",
        landing_dir=root / "landing",
        seeds_dir=seeds_dir,
    )
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BILLING_WAREHOUSE", str(settings.warehouse))
        patch.setenv("BILLING_LANDING_DIR", str(settings.landing_dir))
        patch.setenv("BILLING_SEEDS_DIR", str(seeds_dir))
        yield settings
    shutil.rmtree(seeds_dir, ignore_errors=True)


def write_seeds(seeds_dir: Path, rows: dict[str, list[list[str]]]) -> None:
    """A scenario's own seeds, rate cards and accounts, each with its header, in the
    layout of seeds/ (rate_cards/, accounts/, the seed properties beside them); the
    pipeline's rules (rules/) are the project's."""
    prepare_seeds_dir(seeds_dir)
    for name, columns in seed_columns().items():
        if name in RULES and name not in rows:
            continue
        path = seed_path(seeds_dir, name)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows[name])


def generate_and_build(settings: Settings, options, as_of: str, record_dir: Path) -> dict:
    """Generated data landed and built in `settings`' warehouse; returns the generator record."""
    from billing.landing import ingest_files
    from billing.sample.generate import generate
    from billing.warehouse.build import build

    record = generate(options, settings.landing_dir, settings.seeds_dir, record_dir / "record.json")
    ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir)
    build(settings, as_of)
    return record


@pytest.fixture(scope="session")
def built_scenarios(tmp_path_factory: pytest.TempPathFactory):
    """Generated scenarios, each generated, landed and built once per pytest run.

    `scenario(options, as_of)` returns the built Settings and the generator record; modules
    that only read a scenario share it, modules that change one take `copy_scenario` of it.
    """
    built: dict = {}

    def scenario(options, as_of: str) -> tuple[Settings, dict]:
        if (options, as_of) not in built:
            root = tmp_path_factory.mktemp("scenario")
            settings = Settings(
                root / "warehouse.duckdb", root / "landing", TEST_SEEDS_ROOT / uuid.uuid4().hex[:12]
            )
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("BILLING_WAREHOUSE", str(settings.warehouse))
                patch.setenv("BILLING_LANDING_DIR", str(settings.landing_dir))
                patch.setenv("BILLING_SEEDS_DIR", str(settings.seeds_dir))
                record = generate_and_build(settings, options, as_of, root)
            built[(options, as_of)] = (settings, record)
        return built[(options, as_of)]

    yield scenario
    for settings, _ in built.values():
        shutil.rmtree(settings.seeds_dir, ignore_errors=True)


def copy_scenario(origin: Settings, target: Settings) -> None:
    """A built scenario's warehouse, landing folder, seeds and published copies in `target`.

    The published pointer is a relative symlink, so the copy points at its own versions.
    """
    target.warehouse.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(origin.warehouse, target.warehouse)
    shutil.copytree(origin.landing_dir, target.landing_dir, dirs_exist_ok=True)
    shutil.copytree(origin.seeds_dir, target.seeds_dir, dirs_exist_ok=True)
    for name in ("published.versions", "published"):
        source = origin.warehouse.parent / name
        if source.is_symlink():
            (target.warehouse.parent / name).symlink_to(source.readlink())
        elif source.exists():
            shutil.copytree(source, target.warehouse.parent / name, symlinks=True)


def free_port() -> int:
    """A loopback port nothing listens on, for a test's own server."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    """Read from a DuckDB file with a short-lived read-only connection."""
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
