"""Invoice documents of the demo's invoices: what the PDF says is what the marts say.

The generated two months (built once per run, shared with the gates and Dagster tests) are
copied here and every finalized September invoice is rendered with `billing invoice-pdf
--period`. The PDF's text (pypdf's extraction) is checked against the published marts,
line by line; the same rows render to the same bytes in another process; a finalized
invoice's document is never rewritten, a draft's is.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import subprocess
import sys
from datetime import date

import pytest
from conftest import copy_scenario, query
from pypdf import PdfReader
from test_quality_gates import AS_OF, OPTIONS

from billing.cli import main
from billing.documents.invoice import long_date
from billing.settings import PROJECT_DIR
from billing.warehouse.summary import format_amount

SELLER = """\
name = "Test Seller GmbH"
address = ["Teststrasse 1", "10115 Berlin", "Germany"]
email = "invoices@seller.test"
tax_id = "DE000000000"
payment_instructions = "Pay to IBAN DE00 0000 0000 0000 0000 00 quoting the invoice number."
"""


def pdf_text(path) -> str:
    """The PDF's text, pages joined, as a reader copying it out would get it."""
    reader = PdfReader(io.BytesIO(path.read_bytes()))
    return "\n".join(page.extract_text() for page in reader.pages)


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def demo(workspace, built_scenarios, tmp_path_factory):
    """The shared demo months copied here, September's documents rendered by the CLI."""
    origin, _ = built_scenarios(OPTIONS, AS_OF)
    copy_scenario(origin, workspace)
    seller = tmp_path_factory.mktemp("seller") / "seller.toml"
    seller.write_text(SELLER)
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed):
        patch.setenv("BILLING_SELLER_FILE", str(seller))
        status = main(["invoice-pdf", "--period", "2026-09"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("BILLING_SELLER_FILE", str(seller))
        yield {"settings": workspace, "status": status, "seller": seller, "out": printed.getvalue()}


def september(settings) -> list[tuple]:
    return query(
        settings.published_warehouse,
        "select invoice_id, invoice_number, customer_name, currency, currency_minor_units, "
        "total_amount, tax_amount, due_on from fct_invoices "
        "where status = 'finalized' and billing_period_start = '2026-09-01' "
        "order by invoice_number",
    )


def test_every_finalized_invoice_of_a_period_is_rendered_once(demo):
    settings = demo["settings"]
    invoices = september(settings)
    # The demo's ten customers each have a finalized September invoice.
    assert len(invoices) == 10
    assert demo["status"] == 0
    assert (
        f"10 document(s): 10 written, 0 kept as issued (a finalized invoice's document is "
        f"never rewritten), 0 draft preview(s); the same files are under "
        f"{settings.published_dir / 'invoices'}"
    ) in demo["out"]
    for _, number, *_ in invoices:
        for suffix in (".pdf", ".html"):
            stored = settings.invoice_documents_dir / "2026-09" / f"{number}{suffix}"
            published = settings.published_dir / "invoices" / "2026-09" / f"{number}{suffix}"
            assert stored.is_file() and published.read_bytes() == stored.read_bytes()


def test_each_document_reads_as_the_marts_say(demo):
    settings = demo["settings"]
    checked_lines = 0
    for invoice_id, number, name, currency, units, total, tax, due_on in september(settings):
        text = pdf_text(settings.invoice_documents_dir / "2026-09" / f"{number}.pdf")
        assert f"Invoice number {number}" in text
        assert name in text and "Test Seller GmbH" in text
        assert "1 September 2026 \N{EN DASH} 30 September 2026" in text
        assert f"Amount due {format_amount(total, units)} {currency}" in text
        assert format_amount(tax, units) in text
        assert long_date(due_on) in text
        lines = query(
            settings.published_warehouse,
            "select amount, description from fct_invoice_line_items where invoice_id = ?",
            [invoice_id],
        )
        for amount, description in lines:
            assert format_amount(amount, units) in text, (number, description)
            checked_lines += 1
    # Every line of every September invoice was found in its document.
    assert (
        checked_lines
        == query(
            settings.published_warehouse,
            "select count(*) from fct_invoice_line_items "
            "where is_finalized and billing_period_start = '2026-09-01'",
        )[0][0]
    )
    assert checked_lines > 30


def test_the_same_rows_render_the_same_bytes_in_another_process(demo, tmp_path):
    settings = demo["settings"]
    _, number, *_ = september(settings)[0]
    script = (
        "import sys, duckdb\n"
        "from billing.documents.invoice import load_document, load_seller\n"
        "from billing.documents.render import render_html, render_pdf\n"
        "con = duckdb.connect(sys.argv[1], read_only=True)\n"
        "document = load_document(con, sys.argv[2])\n"
        "html = render_html(document, load_seller(__import__('pathlib').Path(sys.argv[3])))\n"
        "open(sys.argv[4], 'wb').write(render_pdf(html, document.created))\n"
    )
    again = tmp_path / "again.pdf"
    subprocess.run(
        [
            sys.executable,
            "-c",
            script,
            str(settings.published_warehouse),
            number,
            str(demo["seller"]),
            str(again),
        ],
        check=True,
        cwd=PROJECT_DIR,
        env={**os.environ, "PYTHONHASHSEED": "12345"},
    )
    assert (
        again.read_bytes()
        == (settings.invoice_documents_dir / "2026-09" / f"{number}.pdf").read_bytes()
    )


def test_a_finalized_document_is_never_rewritten_and_a_draft_is(demo, monkeypatch, capsys):
    settings = demo["settings"]
    folder = settings.invoice_documents_dir / "2026-09"
    before = {path.name: digest(path) for path in folder.iterdir()}
    [(draft_id, draft_customer)] = query(
        settings.published_warehouse,
        "select invoice_id, customer_name from fct_invoices where status = 'draft' "
        "order by invoice_id limit 1",
    )
    assert main(["invoice-pdf", draft_id]) == 0
    draft = settings.invoice_documents_dir / "drafts" / f"{draft_id}.pdf"
    assert "DRAFT \N{EN DASH} not a bill." in pdf_text(draft) and draft_customer in pdf_text(draft)

    # The seller moves: documents rendered from now on say so; issued ones stay as issued.
    renamed = demo["seller"].parent / "renamed.toml"
    renamed.write_text(SELLER.replace("Test Seller GmbH", "Renamed Seller AG"))
    monkeypatch.setenv("BILLING_SELLER_FILE", str(renamed))
    capsys.readouterr()
    assert main(["invoice-pdf", "--period", "2026-09"]) == 0
    out = capsys.readouterr().out
    assert "10 document(s): 0 written, 10 kept as issued" in out
    assert {path.name: digest(path) for path in folder.iterdir()} == before
    assert main(["invoice-pdf", draft_id]) == 0
    assert "Renamed Seller AG" in pdf_text(draft)
    assert f"draft {draft_id}" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["invoice-pdf"], "give one INVOICE (an id or a number), --period YYYY-MM or --all"),
        (
            ["invoice-pdf", "INV-2026-09-000001", "--period", "2026-09"],
            "give one INVOICE (an id or a number), --period YYYY-MM or --all",
        ),
        (
            ["invoice-pdf", "--period", "2026-09", "--all"],
            "give one INVOICE (an id or a number), --period YYYY-MM or --all",
        ),
        (
            ["invoice-pdf", "INV-2031-01-000001"],
            "no invoice 'INV-2031-01-000001' in the published marts",
        ),
        (
            ["invoice-pdf", "--period", "2027-01"],
            "no finalized invoices for 2027-01 in the published marts",
        ),
    ],
)
def test_what_cannot_be_rendered_is_refused_in_one_line(demo, capsys, argv, message):
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"billing invoice-pdf: error: {message}") and error.count("\n") == 1


def test_a_seller_file_without_a_name_is_refused(demo, tmp_path, monkeypatch, capsys):
    broken = tmp_path / "seller.toml"
    broken.write_text(SELLER.replace('name = "Test Seller GmbH"\n', ""))
    monkeypatch.setenv("BILLING_SELLER_FILE", str(broken))
    assert main(["invoice-pdf", "--period", "2026-09"]) == 2
    assert capsys.readouterr().err == f"billing invoice-pdf: error: {broken} lacks name\n"


def test_all_renders_every_finalized_period_and_keeps_what_was_issued(demo, capsys):
    # Runs after the tests above (it adds October's documents to the shared folder).
    settings = demo["settings"]
    before = {
        path.name: digest(path) for path in (settings.invoice_documents_dir / "2026-09").iterdir()
    }
    assert main(["invoice-pdf", "--all"]) == 0
    assert (
        capsys.readouterr()
        .out.splitlines()[-1]
        .startswith("20 document(s): 10 written, 10 kept as issued")
    )
    october = sorted(path.name for path in (settings.invoice_documents_dir / "2026-10").iterdir())
    assert october == sorted(
        f"INV-2026-10-{n:06d}{suffix}" for n in range(1, 11) for suffix in (".html", ".pdf")
    )
    after = {
        path.name: digest(path) for path in (settings.invoice_documents_dir / "2026-09").iterdir()
    }
    assert after == before


def test_long_dates_read_the_same_in_every_locale():
    assert long_date(date(2026, 10, 4)) == "4 October 2026"
