"""The rules dbt-project-evaluator would enforce, checked over dbt's own manifest.

The package cannot be installed here, so the house keeps its rules in one pytest module:
layer prefixes, documentation, a primary-key test on every model, contracts on marts, no
hard-coded relations and sources read only by staging.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import subprocess

import pytest
import yaml
from conftest import FAULT_CLASSES, faults_run, worker_group
from test_incremental_staging import FAULT_VICTIMS

from billing.seeds import quarantine_reasons
from billing.settings import PROJECT_DIR, dbt_target_dir, load_settings
from billing.warehouse.dbt import run_dbt

LAYER_PREFIXES = {
    "staging": ("stg_",),
    "intermediate": ("int_",),
    "marts": ("fct_", "dim_"),
    "checks": ("chk_",),
}
HARD_CODED_RELATION = re.compile(
    r"\b(from|join)\s+(raw|staging|intermediate|marts|reference|ledger)\.", re.I
)
# The previous build's ledger is read through source('ledger', ...), never looked up.
RELATION_LOOKUP = re.compile(r"adapter\.get_relation|information_schema", re.I)


@pytest.fixture(scope="module")
def manifest() -> dict:
    run_dbt(["parse"], load_settings())
    return json.loads((dbt_target_dir() / "manifest.json").read_text())


def models(manifest: dict) -> list[dict]:
    return [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]


def layer(node: dict) -> str:
    return node["original_file_path"].split("/")[1]


def data_tests_for(manifest: dict, unique_id: str) -> list[dict]:
    return [
        n
        for n in manifest["nodes"].values()
        if n["resource_type"] == "test" and unique_id in n["depends_on"]["nodes"]
    ]


def test_models_are_named_for_their_layer(manifest):
    for node in models(manifest):
        assert node["name"].startswith(LAYER_PREFIXES[layer(node)]), node["name"]


def test_every_model_and_column_is_documented(manifest):
    for node in models(manifest):
        assert node["description"].strip(), node["name"]
        assert node["columns"], f"{node['name']} documents no columns"
        for column in node["columns"].values():
            assert column["description"].strip(), f"{node['name']}.{column['name']}"


def is_contracted_table(node: dict) -> bool:
    """A model whose contract the warehouse enforces as it builds it (not a view)."""
    return node["config"]["contract"]["enforced"] and node["config"]["materialized"] != "view"


def enforced_not_null(node: dict) -> set[str]:
    """The columns whose contract makes the warehouse refuse a null (a contracted table)."""
    if not is_contracted_table(node):
        return set()
    return {
        name
        for name, column in node["columns"].items()
        if any(c["type"] == "not_null" for c in column.get("constraints", []))
    }


def test_every_model_has_a_primary_key_test(manifest):
    """A primary_key test (D75), a unique test on a column that is constrained not null
    (D74), or a composite key."""
    for node in models(manifest):
        tests = data_tests_for(manifest, node["unique_id"])
        by_column: dict[str, set[str]] = {c: {"not_null"} for c in enforced_not_null(node)}
        for test in tests:
            meta = test.get("test_metadata") or {}
            by_column.setdefault(test.get("column_name") or "", set()).add(meta.get("name"))
        has_key = any(
            {"unique", "not_null"} <= names or "primary_key" in names
            for names in by_column.values()
        )
        has_composite = any("unique_combination_of_columns" in n for n in by_column.values())
        assert has_key or has_composite, node["name"]


def test_a_contracted_column_refuses_nulls_by_its_constraint_not_a_data_test(manifest):
    """DuckDB refuses a null into a NOT NULL column as the table is built, so a not_null
    data test there is a second query over the same rows in every build (DECISIONLOG D74);
    a not_null test with a `where` (null allowed on some rows) stays a test."""
    for node in models(manifest):
        contracted_table = is_contracted_table(node)
        for test in data_tests_for(manifest, node["unique_id"]):
            meta = test.get("test_metadata") or {}
            if meta.get("name") == "not_null" and not test["config"].get("where"):
                column = f"{node['name']}.{test.get('column_name')}"
                assert not contracted_table, f"{column}: use constraints: [{{type: not_null}}]"


def test_a_key_is_one_primary_key_test_not_a_unique_and_a_not_null_pair(manifest):
    """One query per key (D75): a column tested both unique and not_null, anywhere (models,
    seeds, sources), is two dbt nodes in every build where primary_key is one."""
    by_column: dict[tuple[str, str], set[str]] = {}
    for test in manifest["nodes"].values():
        if test["resource_type"] != "test" or test["config"].get("where"):
            continue
        if test.get("column_name"):
            key = (",".join(test["depends_on"]["nodes"]), test["column_name"])
            by_column.setdefault(key, set()).add((test.get("test_metadata") or {})["name"])
    pairs = sorted(key for key, names in by_column.items() if {"unique", "not_null"} <= names)
    assert pairs == []
    assert sum("primary_key" in names for names in by_column.values()) >= 30


def test_marts_enforce_contracts(manifest):
    for node in models(manifest):
        if layer(node) == "marts":
            assert node["config"]["contract"]["enforced"], node["name"]


def test_only_staging_reads_raw_sources(manifest):
    for node in models(manifest):
        if node["depends_on"]["nodes"] and layer(node) not in {"staging"}:
            sources = [
                d for d in node["depends_on"]["nodes"] if d.startswith("source.billing.raw.")
            ]
            allowed = node["name"] == "fct_landed_files"  # the landing ledger is itself raw
            assert not sources or allowed, node["name"]


def test_the_ledger_is_read_as_a_source(manifest):
    """The build's one loop (ledger -> rating -> ledger) shows in lineage: every model that
    needs the previous build's ledger depends on source `ledger`, none looks it up."""
    readers = sorted(
        node["name"]
        for node in models(manifest)
        if any(d.startswith("source.billing.ledger.") for d in node["depends_on"]["nodes"])
    )
    assert readers == [
        "fct_credit_balances",
        "fct_invoice_line_items",
        "fct_invoices",
        "fct_voided_invoice_line_items",
        "int_credit_applications",
        "int_invoice_periods_billed",
        "int_invoices_finalizing",
        "int_invoices_voided",
    ]
    project_macros = [m for m in manifest["macros"].values() if m["package_name"] == "billing"]
    for node in [*manifest["nodes"].values(), *project_macros]:
        if node["resource_type"] in {"model", "test", "macro"}:
            code = node.get("raw_code") or node.get("macro_sql", "")
            assert not RELATION_LOOKUP.search(code), node["name"]


REASON_CASES = re.compile(
    r"\bcase\b((?:(?!\bcase\b).)*?)\bend as "
    r"(parse_problem|quarantine_reason|dedupe_quarantine_reason|match_problem|reversal_problem)",
    re.S,
)


def reasons_emitted(model: str) -> list[str]:
    """The reason literals of a staging model's quarantine CASE expressions, in order."""
    sql = (PROJECT_DIR / "models" / "staging" / f"{model}.sql").read_text()
    return [
        reason
        for block, _ in REASON_CASES.findall(sql)
        for reason in re.findall(r"then '([a-z_]+)'", block)
    ]


def test_each_dashboard_exposure_names_the_marts_its_charts_read(manifest):
    # bi/dashboards.yml is the dashboards; the exposures are what dbt docs and lineage
    # show of them. They must agree, or a mart's lineage hides a dashboard that reads it.
    spec = yaml.safe_load((PROJECT_DIR / "bi" / "dashboards.yml").read_text())
    for slug, dashboard in spec["dashboards"].items():
        charts = {name for row in dashboard["rows"] for name in row}
        sql = " ".join(spec["datasets"][spec["charts"][name]["dataset"]]["sql"] for name in charts)
        read = set(re.findall(r"\b(?:from|join)\s+(fct_\w+)", sql))
        exposure = manifest["exposures"][f"exposure.billing.{slug}_dashboard"]
        named = {node.split(".")[-1] for node in exposure["depends_on"]["nodes"]}
        assert named == read, slug
        assert exposure["url"].endswith(f"/superset/dashboard/{slug}/")


def test_the_quarantine_reasons_are_one_list():
    """What staging can store is exactly seeds/rules/quarantine_reasons.csv, in its order:
    validation per line (parsed), routing against other events (routed)."""
    assert reasons_emitted("stg_events__parsed_events") == quarantine_reasons("validation")
    assert reasons_emitted("stg_events__routed_events") == quarantine_reasons("routing")
    assert len(quarantine_reasons("validation")) == 16
    assert quarantine_reasons("routing") == [
        "idempotency_conflict",
        "reversal_of_unknown_event",
        "reversal_mismatch",
        "reversal_of_reversed_event",
    ]


def test_no_hard_coded_relations(manifest):
    for node in manifest["nodes"].values():
        if node["resource_type"] in {"model", "test"}:
            assert not HARD_CODED_RELATION.search(node.get("raw_code", "")), node["name"]


def test_the_dagster_code_names_no_model(manifest):
    """Steps come from selectors.yml, partitions from folders, gates from `meta.gates`: a
    model moved or renamed in dbt needs no edit in billing/orchestration/."""
    code = "\n".join(
        path.read_text() for path in (PROJECT_DIR / "billing" / "orchestration").glob("*.py")
    )
    named = sorted(
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] in {"model", "seed", "snapshot"}
        and re.search(rf"\b{node['name']}\b", code)
    )
    assert named == []


def test_every_gate_reads_a_check_model(manifest):
    """Each Great Expectations suite reads a dbt view under models/checks/ (what it checks is
    written once, in SQL dbt documents and tests), and billing/quality.py names no relation
    outside the checks schema."""
    from billing.quality import SUITES

    check_models = {
        node["name"]: node["config"]["meta"]["partition"]
        for node in models(manifest)
        if layer(node) == "checks"
    }
    kinds = {"day": "daily", "period": "monthly", "candidates": "monthly"}
    read = {spec.model: kinds[spec.applies_to] for spec in SUITES}
    assert {model: check_models.get(model) for model in read} == read
    code = (PROJECT_DIR / "billing" / "quality.py").read_text()
    outside = re.findall(r"\b(?:raw|staging|intermediate|marts|reference|ledger)\.[a-z_]+", code)
    assert outside == []


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, {"memory_limit": "5.5 GiB", "threads": "2", "insertion_order": "false"}),
        (
            {"BILLING_DUCKDB_MEMORY_LIMIT": "1GB", "BILLING_DUCKDB_THREADS": "1"},
            {"memory_limit": "953.6 MiB", "threads": "1", "insertion_order": "false"},
        ),
    ],
)
def test_dbt_runs_duckdb_with_the_profile_settings(tmp_path, monkeypatch, environment, expected):
    """The DuckDB settings profiles.yml sets reach dbt's connection, and the two env values
    move them (DECISIONLOG D60): without a cap DuckDB takes 80 % of the machine's memory."""
    monkeypatch.delenv("BILLING_DUCKDB_MEMORY_LIMIT", raising=False)
    monkeypatch.delenv("BILLING_DUCKDB_THREADS", raising=False)
    query = (
        "select current_setting('memory_limit') as memory_limit,"
        " cast(current_setting('threads') as varchar) as threads,"
        " cast(current_setting('preserve_insertion_order') as varchar) as insertion_order"
    )
    shown = subprocess.run(  # its own process: dbt-duckdb keeps one database per process
        [
            str(PROJECT_DIR / ".venv" / "bin" / "dbt"),
            "show",
            "--inline",
            query,
            "--output",
            "json",
            "--log-format",
            "json",
            "--project-dir",
            str(PROJECT_DIR),
            "--profiles-dir",
            str(PROJECT_DIR),
            "--target-path",
            str(tmp_path / "target"),
            "--log-path",
            str(tmp_path / "logs"),
        ],
        env={
            **os.environ,
            "BILLING_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
            **environment,
        },
        capture_output=True,
        text=True,
        check=False,
    )
    assert shown.returncode == 0, shown.stdout[-2000:] + shown.stderr[-2000:]
    previews = [
        json.loads(json.loads(line)["data"]["preview"])
        for line in shown.stdout.splitlines()
        if line.startswith("{") and '"preview"' in line
    ]
    assert previews == [[expected]]


def test_workers_take_whole_groups(request):
    """`make test` relies on pytest-xdist's loadgroup to build each scenario once: a module
    split across workers builds it on each (pytest 9.2 with xdist 3.8 dropped the groups
    silently, pytest-xdist#1386). On a worker, every collected test carries its group."""
    if not getattr(request.config.option, "loadgroup", False):
        pytest.skip("not a `--dist loadgroup` worker (a serial run has nothing to split)")
    items = request.session.items
    assert items
    assert [
        item.nodeid for item in items if not item.nodeid.endswith(f"@{worker_group(item)}")
    ] == []


FAULT_CASES = [
    f"test_a_build_killed_after_a_model_then_run_again_gives_the_same_marts[{victim}]"
    for victim in FAULT_VICTIMS
]


def pytest_of(*args: str, **environment: str) -> subprocess.CompletedProcess:
    """pytest over the incremental-staging module in its own process, with CI and
    BILLING_FAULTS as given (unset otherwise), never on workers."""
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "BILLING_FAULTS"}}
    env.pop("PYTEST_XDIST_WORKER", None)
    return subprocess.run(
        [
            str(PROJECT_DIR / ".venv" / "bin" / "pytest"),
            "-p",
            "no:cacheprovider",
            "-q",
            "-rs",
            "tests/python/test_incremental_staging.py",
            *args,
        ],
        cwd=PROJECT_DIR,
        env={**env, **environment},
        capture_output=True,
        text=True,
        check=False,
    )


def test_fault_injection_is_the_eight_marked_cases_and_skipped_only_outside_ci(monkeypatch):
    """D69: the eight opt-in kill cases are exactly those marked `faults`; without CI=true
    or BILLING_FAULTS=1 each is reported as skipped (never silently absent), and a
    fault-only run that selects nothing fails (pytest's exit 5), as `make test-faults`
    would."""
    collected = pytest_of("--collect-only", "-m", "faults")
    assert collected.returncode == 0, collected.stdout + collected.stderr
    ids = sorted(line.split("::")[1] for line in collected.stdout.splitlines() if "::" in line)
    assert ids == sorted(FAULT_CASES)

    local = pytest_of("-m", "faults")
    assert local.returncode == 0, local.stdout + local.stderr
    assert "8 skipped" in local.stdout
    assert local.stdout.count("fault injection: CI=true or make test-faults") == 1  # grouped

    nothing = pytest_of("-m", "faults", "-k", "no_such_victim", BILLING_FAULTS="1")
    assert nothing.returncode == 5, nothing.stdout + nothing.stderr

    # CI (any case of "true") or BILLING_FAULTS=1 runs them; nothing else does.
    for ci, faults, runs in [
        ("true", None, True),
        ("TRUE", None, True),
        (None, "1", True),
        ("false", None, False),
        (None, "yes", False),
        (None, None, False),
    ]:
        for name, value in (("CI", ci), ("BILLING_FAULTS", faults)):
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, value)
        assert faults_run() is runs, (ci, faults)


def test_every_fault_class_names_tests_that_exist():
    """`make torture` counts the tests of each fault class (conftest FAULT_CLASSES): a
    renamed test must not drop out of it silently."""
    missing = []
    for prefix in FAULT_CLASSES:
        module_name, _, test_prefix = prefix.partition("::")
        module = importlib.import_module(module_name)
        tests = [name for name in vars(module) if name.startswith("test_")]
        if not any(name.startswith(test_prefix) for name in tests):
            missing.append(prefix)
    assert missing == []
