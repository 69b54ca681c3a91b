"""Superset over the published marts (`make bi`): what the charts show is what the marts say.

The generated demo months (built once per run, shared with the gates and Dagster tests) are
copied here; Superset is provisioned from bi/ into a folder of its own and served on a free
loopback port. Every chart's query, asked through Superset's API as a logged-in user,
returns the rows SQL over the published marts returns (money to the cent); the invoiced
totals per currency and month also match fct_invoices summed by hand; both dashboards
render in headless Chromium; finance's walk (find a customer's invoice, see its lines,
download its PDF) is clicked through in Chromium, a screenshot per step; a build made
while Superset runs shows at the next query. Runs with CI=true or BILLING_BI=1
(`make test-bi`): it needs `.venv-bi` and Debian's Chromium. BILLING_BI_SCREENSHOTS=docs
refreshes the README's pictures from the run.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from decimal import Decimal
from pathlib import Path

import pypdfium2
import pytest
import yaml
from conftest import copy_scenario, free_port, query
from test_quality_gates import AS_OF, OPTIONS

from billing.cli import main
from billing.settings import PROJECT_DIR
from billing.warehouse.build import build

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
    # September's and October's documents, with the project's seller.toml.
    assert main(["invoice-pdf", "--all"]) == 0
    home = tmp_path_factory.mktemp("bi")
    env = {
        **os.environ,
        "BILLING_BI_HOME": str(home),
        "BILLING_BI_INVOICES": str(workspace.published_dir / "invoices"),
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
        [
            BI_PYTHON,
            "bi/screenshot.py",
            "dashboard",
            superset["api"].url,
            slug,
            str(out),
            "--wait-for",
            shows,
        ],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, browser_failure(result, superset["log"])
    assert is_png(out) and out.stat().st_size > 50_000
    keep_for_the_readme(out, f"bi-{slug}.png")


def test_a_refused_login_says_so_at_once(superset, tmp_path):
    out = tmp_path / "refused.png"
    env = {**superset["env"], "BILLING_BI_PASSWORD": "not-the-password"}
    result = subprocess.run(
        [BI_PYTHON, "bi/screenshot.py", "dashboard", superset["api"].url, "finance", str(out)],
        cwd=PROJECT_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, browser_failure(result, superset["log"])
    assert result.stderr == "could not log in: Superset refused 'admin' (its API answered 401)\n"


def browser_failure(result: subprocess.CompletedProcess, log: Path) -> str:
    """What the browser printed and what Superset logged last: a failed run on a busy CI
    machine is diagnosed from these alone."""
    tail = "\n".join(log.read_text(errors="replace").splitlines()[-40:])
    return f"{result.stdout}{result.stderr}\n--- superset.log (last 40 lines) ---\n{tail}"


def keep_for_the_readme(picture: Path, name: str) -> None:
    """BILLING_BI_SCREENSHOTS=docs refreshes the README's pictures from this run."""
    if os.environ.get("BILLING_BI_SCREENSHOTS"):
        target = PROJECT_DIR / os.environ["BILLING_BI_SCREENSHOTS"] / name
        target.write_bytes(picture.read_bytes())


def is_png(path: Path) -> bool:
    return path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def invoice_to_find(settings) -> tuple[str, str, int]:
    """The finalized September invoice with the most lines (ties: the lowest number): its
    customer, number and line count."""
    [row] = query(
        settings.published_warehouse,
        "select invoices.customer_name, invoices.invoice_number, count(*) as lines "
        "from fct_invoices as invoices inner join fct_invoice_line_items using (invoice_id) "
        "where invoices.status = 'finalized' and invoices.billing_period_start = '2026-09-01' "
        "group by all order by lines desc, invoice_number limit 1",
    )
    return row


def test_finance_finds_an_invoice_sees_its_lines_and_downloads_its_pdf(superset, tmp_path):
    settings = superset["settings"]
    customer, number, line_count = invoice_to_find(settings)
    out = tmp_path / "walkthrough"
    result = subprocess.run(
        [
            BI_PYTHON,
            "bi/screenshot.py",
            "walkthrough",
            superset["api"].url,
            str(out),
            "--customer",
            customer,
            "--invoice",
            number,
        ],
        cwd=PROJECT_DIR,
        env=superset["env"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, browser_failure(result, superset["log"])
    # The PDF the link downloads is the document rendered from the ledger, byte for byte.
    downloaded = out / f"{number}.pdf"
    issued = settings.invoice_documents_dir / "2026-09" / f"{number}.pdf"
    assert downloaded.read_bytes() == issued.read_bytes()
    assert line_count >= 5  # a tiered invoice: the lines picture shows several
    page = pypdfium2.PdfDocument(downloaded)[0].render(scale=1.5).to_pil()
    page.save(out / "invoice-pdf.png")
    for step in ("find-invoice", "invoice-lines", "download-pdf", "invoice-pdf"):
        picture = out / f"{step}.png"
        assert is_png(picture) and picture.stat().st_size > 10_000, step
        keep_for_the_readme(picture, f"bi-{step}.png")


def browser_session(api: Superset) -> urllib.request.OpenerDirector:
    """A cookie session logged in through the login form, as the browser's is (the
    documents are pages of the app, not of its token API)."""
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    request = urllib.request.Request(api.url + "/api/v1/security/csrf_token/")
    request.add_header("Authorization", f"Bearer {api.token}")
    with opener.open(request, timeout=60) as response:
        csrf = json.loads(response.read())["result"]
    form = {"csrf_token": csrf, "username": "admin", "password": "a-test-password"}
    with opener.open(api.url + "/login/", urllib.parse.urlencode(form).encode(), 60) as answer:
        assert "/login/" not in answer.url
    return opener


def test_a_document_is_served_to_logged_in_users_only(superset):
    api, settings = superset["api"], superset["settings"]
    path = "/billing/invoices/2026-09/INV-2026-09-000001.pdf"
    issued = (settings.invoice_documents_dir / "2026-09" / "INV-2026-09-000001.pdf").read_bytes()
    with urllib.request.urlopen(api.url + path, timeout=60) as response:
        # Without a session: the login page, never the document.
        assert "/login/" in response.url and not response.read().startswith(b"%PDF")
    session = browser_session(api)
    with session.open(api.url + path, timeout=60) as response:
        assert response.headers["Content-Disposition"] == (
            "attachment; filename=INV-2026-09-000001.pdf"
        )
        assert response.read() == issued
    # Nothing outside the documents folder, and nothing but a PDF or an HTML page.
    for name in ("../../bi/superset.db", "..%2f..%2fwarehouse.duckdb.html", "2026-09/x.pdf"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            session.open(f"{api.url}/billing/invoices/{name}", timeout=60)
        assert refused.value.code == 404, name
    # A finalized invoice whose document was not rendered yet says how to render it.
    with pytest.raises(urllib.error.HTTPError) as missing:
        session.open(f"{api.url}/billing/invoices/2026-11/INV-2026-11-000001.pdf", timeout=60)
    assert missing.value.read() == b"not rendered yet: run `billing invoice-pdf --period 2026-11`\n"


def test_a_build_while_superset_runs_shows_at_the_next_query(superset):
    # Runs last: it moves the shared workspace on a month. November (a draft at AS_OF) is
    # finalized by a build a month later; nothing is provisioned again.
    settings, api = superset["settings"], superset["api"]
    chart = SPEC["charts"]["draft_vs_finalized"]
    before = superset_rows(api, chart)
    assert ("2026-11", "draft") in {row[:2] for row in before}
    build(settings, "2026-12-05T00:00:00Z")
    after = superset_rows(api, chart)
    assert after == expected_rows(settings, chart) != before
    statuses = {row[:2] for row in after}
    assert ("2026-11", "finalized") in statuses and ("2026-11", "draft") not in statuses
    assert ("2026-12", "draft") in statuses
    assert invoiced_in_superset(api) == invoiced_by_hand(settings)
