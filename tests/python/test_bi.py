"""Superset over the published marts (`make bi`): what the charts show is what the marts say.

The generated demo months (built once per run, shared with the gates and Dagster tests) are
copied here; Superset is provisioned from bi/ into a folder of its own and served on a free
loopback port. Every chart's query, asked through Superset's API as a logged-in user,
returns the rows SQL over the published marts returns (money to the cent); the invoiced
totals per currency and month also match fct_invoices summed by hand; both dashboards
render in headless Chromium. Runs with CI=true or
BILLING_BI=1 (`make test-bi`): it needs `.venv-bi` and Debian's Chromium.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from conftest import copy_scenario, free_port, query
from test_quality_gates import AS_OF, OPTIONS

from billing.settings import PROJECT_DIR

pytestmark = pytest.mark.bi

BI_PYTHON = PROJECT_DIR / ".venv-bi" / "bin" / "python"
SPEC = yaml.safe_load((PROJECT_DIR / "bi" / "dashboards.yml").read_text())
CENT = Decimal("0.01")


class Superset:
    """A running Superset and a logged-in API session."""

    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def get(self, path: str) -> dict:
        request = urllib.request.Request(self.url + path)
        request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())

    def chart_rows(self, title: str) -> list[dict]:
        charts = self.get("/api/v1/chart/?q=(page_size:100)")["result"]
        [chart] = [c for c in charts if c["slice_name"] == title]
        return self.get(f"/api/v1/chart/{chart['id']}/data/")["result"][0]["data"]


def post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def wait_until_up(url: str, server: subprocess.Popen, log: Path) -> None:
    """Superset's first start takes tens of seconds; a server that dies says why."""
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"Superset exited:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                if response.read() == b"OK":
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    raise AssertionError(f"Superset never answered on {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def superset(workspace, built_scenarios, tmp_path_factory):
    assert BI_PYTHON.exists(), "no .venv-bi: run `make bi-setup` (make test does with CI=true)"
    origin, _ = built_scenarios(OPTIONS, AS_OF)
    copy_scenario(origin, workspace)
    home = tmp_path_factory.mktemp("bi")
    env = {
        **os.environ,
        "BILLING_BI_HOME": str(home),
        "SUPERSET_CONFIG_PATH": str(PROJECT_DIR / "bi" / "superset_config.py"),
        "BILLING_BI_PASSWORD": "a-test-password",
    }
    subprocess.run(
        [BI_PYTHON, "bi/provision.py", "provision", "--marts", str(workspace.published_warehouse)],
        cwd=PROJECT_DIR,
        env=env,
        check=True,
        capture_output=True,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = home / "superset.log"
    with log.open("w") as handle:
        server = subprocess.Popen(
            [BI_PYTHON.with_name("superset"), "run", "-h", "127.0.0.1", "-p", str(port)],
            cwd=PROJECT_DIR,
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_up(url, server, log)
        login = {"username": "admin", "password": "a-test-password", "provider": "db"}
        token = post(f"{url}/api/v1/security/login", login)["access_token"]
        yield {"api": Superset(url, token), "settings": workspace, "env": env, "log": log}
    finally:
        server.terminate()
        server.wait(timeout=30)


def normalized(value):
    """A cell as both sides can agree on: numbers as exact decimals rounded to 4 places
    (Superset sends JSON numbers), dates as ISO text (it sends epoch milliseconds)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value)).quantize(Decimal("0.0001"))
    return str(value)


def expected_rows(settings, chart: dict) -> list[tuple]:
    """The chart's rows, by plain SQL over the published marts."""
    dataset = SPEC["datasets"][chart["dataset"]]
    where = f"where {chart['where']}" if chart.get("where") else ""
    if "columns" in chart:
        select, group = ", ".join(chart["columns"]), ""
    else:
        metrics = [dataset["metrics"][name] for name in chart["metrics"]]
        select = ", ".join([*chart["groupby"], *metrics])
        group = "group by " + ", ".join(chart["groupby"])
    sql = f"select {select} from ({dataset['sql']}) as dataset {where} {group}"
    return sorted(
        (tuple(normalized(v) for v in row) for row in query(settings.published_warehouse, sql)),
        key=repr,
    )


def superset_rows(api: Superset, chart: dict) -> list[tuple]:
    names = chart.get("columns") or [*chart["groupby"], *chart["metrics"]]
    dates = {"issued_on", "due_on", "usage_date", "reconciliation_date"}
    rows = []
    for row in api.chart_rows(chart["title"]):
        cells = []
        for name in names:
            value = row[name]
            if name in dates and value is not None:
                value = time.strftime("%Y-%m-%d", time.gmtime(value / 1000))
            cells.append(normalized(value))
        rows.append(tuple(cells))
    return sorted(rows, key=repr)


def test_every_chart_returns_what_sql_over_the_marts_returns(superset):
    checked = {}
    for name, chart in SPEC["charts"].items():
        expected = expected_rows(superset["settings"], chart)
        assert superset_rows(superset["api"], chart) == expected, name
        checked[name] = len(expected)
    # Every chart was asked, and the demo months give each of them rows (the adjustments
    # chart has none: the demo has no late usage).
    assert sorted(checked) == sorted(SPEC["charts"])
    assert [name for name, count in checked.items() if count == 0] == ["adjustments_and_credits"]


def invoiced_by_hand(settings) -> dict:
    rows = query(
        settings.published_warehouse,
        "select strftime(billing_period_start, '%Y-%m'), currency, sum(total_amount), count(*) "
        "from fct_invoices group by all",
    )
    return {(period, currency): (total, count) for period, currency, total, count in rows}


def invoiced_in_superset(api: Superset) -> dict:
    rows = api.chart_rows(SPEC["charts"]["invoiced_per_month"]["title"])
    return {
        (row["period"], row["currency"]): (
            Decimal(str(row["invoiced"])).quantize(CENT),
            row["invoices"],
        )
        for row in rows
    }


def test_invoiced_per_month_and_currency_is_the_invoices_to_the_cent(superset):
    by_hand = invoiced_by_hand(superset["settings"])
    # The ten demo customers bill in USD and EUR: September and October finalized,
    # November a draft at AS_OF.
    assert sorted(by_hand) == [
        (period, currency)
        for period in ("2026-09", "2026-10", "2026-11")
        for currency in ("EUR", "USD")
    ]
    assert invoiced_in_superset(superset["api"]) == by_hand


def test_the_server_lets_the_page_load_nothing_from_elsewhere(superset):
    with urllib.request.urlopen(superset["api"].url + "/login/", timeout=60) as response:
        policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy and "connect-src 'self'" in policy
    assert "scarf" not in policy and "https:" not in policy


@pytest.mark.parametrize(
    ("slug", "shows"), [("finance", "INV-2026-09"), ("operations", "future_timestamp")]
)
def test_each_dashboard_renders_in_headless_chromium(superset, tmp_path, slug, shows):
    out = tmp_path / f"{slug}.png"
    env = {**superset["env"], "BILLING_BI_PASSWORD": "a-test-password"}
    result = subprocess.run(
        [BI_PYTHON, "bi/screenshot.py", superset["api"].url, slug, str(out), "--wait-for", shows],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 50_000
    # BILLING_BI_SCREENSHOTS=docs refreshes the README's pictures from this run.
    if os.environ.get("BILLING_BI_SCREENSHOTS"):
        target = PROJECT_DIR / os.environ["BILLING_BI_SCREENSHOTS"] / f"bi-{slug}.png"
        target.write_bytes(out.read_bytes())
