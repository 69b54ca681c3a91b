"""Every dbt unit test, once per pytest run (builds skip them: PRODUCTION_BUILD_ARGS).

Unit tests check a model's SQL against fixture rows; dbt still reads the column types of
each model's inputs from the warehouse, so they run against an empty build of the project
(`dbt run --empty`: every relation, no rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from billing.settings import DEFAULT_SEEDS_DIR, Settings, dbt_target_dir
from billing.warehouse.dbt import prepare_run, run_dbt
from billing.warehouse.run_context import run_context_for


@pytest.fixture(scope="module")
def empty_build(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """The project seeded and built empty (`dbt run --empty`: every relation, no rows),
    once for the module: the unit tests need the relations' types, the parse test a
    warehouse a one-model build can run in."""
    root = tmp_path_factory.mktemp("empty_build")
    # The committed seeds: the unit tests bring their own rows, the seeds only give types.
    settings = Settings(root / "warehouse.duckdb", root / "landing", DEFAULT_SEEDS_DIR)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BILLING_WAREHOUSE", str(settings.warehouse))
        patch.setenv("BILLING_SEEDS_DIR", str(settings.seeds_dir))
        prepare_run(settings, run_context_for("2026-11-10T00:00:00Z"))
        run_dbt(["seed"], settings, verbose=False)
        run_dbt(["run", "--empty"], settings, verbose=False)
        yield settings


def test_every_dbt_unit_test_passes(empty_build):
    results = run_dbt(["test", "--select", "test_type:unit"], empty_build, verbose=False)
    manifest = json.loads((dbt_target_dir() / "manifest.json").read_text())
    declared = sorted(test["name"] for test in manifest["unit_tests"].values())
    ran = sorted(result.node.name for result in results)
    # Every declared unit test ran (a selector that matched nothing would pass silently).
    assert ran == declared
    assert len(declared) >= 30
    assert {str(result.status).lower() for result in results} == {"pass"}


def test_a_new_as_of_reuses_the_parse_and_reaches_the_models(empty_build, monkeypatch):
    """D52: the run context is a table, not --vars, so a build at another `as_of` than the
    run before it keeps dbt's partial parse (the edit loop's seconds); the models read the
    new row (every scenario that passes an `as_of` proves they rate at it)."""
    import dbt.cli.main
    import duckdb

    from billing.warehouse.build import build

    events: list[str] = []

    class RecordingRunner(dbt.cli.main.dbtRunner):
        def __init__(self, manifest=None, callbacks=None):
            recorder = [lambda event: events.append(event.info.name)]
            super().__init__(manifest=manifest, callbacks=[*(callbacks or []), *recorder])

    monkeypatch.setattr(dbt.cli.main, "dbtRunner", RecordingRunner)
    build(empty_build, "2026-10-01T00:00:00Z", select="int_billing_periods", verbose=False)
    events.clear()
    build(empty_build, "2026-11-15T12:00:00Z", select="int_billing_periods", verbose=False)
    assert "UnableToPartialParse" not in events
    assert "PartialParsingNotEnabled" not in events
    assert "NodeFinished" in events
    with duckdb.connect(str(empty_build.warehouse), read_only=True) as con:
        assert con.execute(
            "select strftime(as_of, '%Y-%m-%d %H:%M'), build_id from control.run_context"
        ).fetchall() == [("2026-11-15 12:00", "")]


def test_the_docs_page_has_the_overview_and_exposures_and_is_served_locally(empty_build, tmp_path):
    """`billing docs`: one self-contained page with the project's overview, every exposure
    and the catalog's column types, served on 127.0.0.1 with a policy that lets the page
    reach nothing else (dbt's page tracker included)."""
    import threading
    import urllib.request

    from billing.warehouse.docs import CONTENT_SECURITY_POLICY, docs_server, generate_docs

    page = generate_docs(empty_build)
    assert page == empty_build.warehouse.parent / "docs" / "index.html"
    manifest = json.loads((dbt_target_dir() / "manifest.json").read_text())
    assert manifest["metadata"]["send_anonymous_usage_stats"] is False
    assert (
        "# The usage-based billing warehouse"
        in manifest["docs"]["doc.billing.__overview__"]["block_contents"]
    )
    assert sorted(e["name"] for e in manifest["exposures"].values()) == [
        "billing_invoices_command",
        "finance_dashboard",
        "finance_published_marts",
        "invoice_documents",
        "on_call_alerts",
        "operations_dashboard",
    ]
    catalog = json.loads((dbt_target_dir() / "catalog.json").read_text())
    invoices = catalog["nodes"]["model.billing.fct_invoices"]["columns"]
    assert invoices["total_amount"]["type"] == "DECIMAL(38,4)"
    text = page.read_text()
    assert "The usage-based billing warehouse" in text and "finance_published_marts" in text

    with docs_server(page.parent, 0) as server:
        threading.Thread(target=server.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{server.server_address[1]}/index.html"
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
            assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
            assert response.read() == page.read_bytes()
        server.shutdown()
    assert server.server_address[0] == "127.0.0.1"

    # Before the first build: the page from an empty catalog, and no warehouse file made.
    fresh = Settings(
        tmp_path / "none" / "warehouse.duckdb", tmp_path / "landing", DEFAULT_SEEDS_DIR
    )
    assert "The usage-based billing warehouse" in generate_docs(fresh).read_text()
    assert not fresh.warehouse.exists()
