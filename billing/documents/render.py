"""Invoice documents written to disk: HTML by Jinja2, PDF by WeasyPrint (DECISIONLOG D80).

The same invoice rows give the same bytes: the PDF's dates are the invoice's own (its
finalization, through `dcterms.created`/`modified` and SOURCE_DATE_EPOCH, which fontTools
reads when it subsets the embedded font), and the template has no clock in it. A finalized
invoice's document is written once and never replaced: editing the seller file or the
template changes the documents rendered afterwards, never one already issued. A draft's
document is a preview and is rewritten every time.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import jinja2

from billing.documents.invoice import (
    InvoiceDocument,
    Seller,
    finalized_invoices,
    load_document,
    load_seller,
)
from billing.rules.calendar import Window
from billing.settings import PROJECT_DIR, Settings

TEMPLATES = Path(__file__).resolve().parent / "templates"
DEFAULT_SELLER_FILE = PROJECT_DIR / "seller.toml"


def seller_file() -> Path:
    """BILLING_SELLER_FILE, else the project's `seller.toml`."""
    value = os.environ.get("BILLING_SELLER_FILE", "").strip()
    return Path(value).expanduser().resolve() if value else DEFAULT_SELLER_FILE


@contextlib.contextmanager
def source_date_epoch(moment: datetime):
    """SOURCE_DATE_EPOCH set to `moment` while WeasyPrint embeds fonts (fontTools stamps
    a subset font with it; without it, with the wall clock), then put back."""
    before = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(moment.replace(tzinfo=UTC).timestamp()))
    try:
        yield
    finally:
        if before is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = before


def render_html(invoice: InvoiceDocument, seller: Seller) -> str:
    """The invoice as one self-contained HTML page (its style inlined)."""
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return environment.get_template("invoice.html.j2").render(
        invoice=invoice,
        seller=seller,
        css=(TEMPLATES / "invoice.css").read_text(encoding="utf-8"),
        created=invoice.created.strftime("%Y-%m-%dT%H:%M:%SZ"),
    )


def render_pdf(html: str, created: datetime) -> bytes:
    """The HTML as PDF, byte for byte the same for the same HTML and date."""
    import weasyprint  # imported here: it loads Pango, which no other command needs

    with source_date_epoch(created):
        return weasyprint.HTML(string=html, base_url=str(TEMPLATES)).write_pdf()


@dataclass(frozen=True)
class Rendered:
    """Where one invoice's document is, and whether this run wrote it."""

    invoice: InvoiceDocument
    pdf: Path
    html: Path
    outcome: str  # written | kept (issued earlier, never rewritten) | draft preview

    def describe(self) -> str:
        name = self.invoice.invoice_number or f"draft {self.invoice.invoice_id}"
        return f"{name:<22} {self.outcome:<8} {self.pdf}"


def document_stem(directory: Path, invoice: InvoiceDocument) -> Path:
    """`YYYY-MM/INV-…` for a finalized invoice, `drafts/<invoice_id>` for a draft."""
    if invoice.is_final:
        return directory / f"{invoice.period_start:%Y-%m}" / str(invoice.invoice_number)
    return directory / "drafts" / invoice.invoice_id


def write_once(path: Path, content: bytes) -> bool:
    """Write `path` unless it exists; False when it did. The file appears whole or not at
    all (a link of a finished temporary file), and an existing one is never replaced."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(content)
    try:
        os.link(partial, path)
    except FileExistsError:
        return False
    finally:
        partial.unlink()
    return True


def replace_file(path: Path, content: bytes) -> None:
    """Write `path` whole, replacing what was there (drafts only)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_bytes(content)
    os.replace(partial, path)


def write_document(directory: Path, invoice: InvoiceDocument, seller: Seller) -> Rendered:
    """Render and store one invoice's HTML and PDF (see the module docstring)."""
    stem = document_stem(directory, invoice)
    pdf, html_path = stem.with_suffix(".pdf"), stem.with_suffix(".html")
    if invoice.is_final and pdf.exists() and html_path.exists():
        return Rendered(invoice, pdf, html_path, "kept")
    html = render_html(invoice, seller)
    content = render_pdf(html, invoice.created)
    if not invoice.is_final:
        replace_file(html_path, html.encode("utf-8"))
        replace_file(pdf, content)
        return Rendered(invoice, pdf, html_path, "draft")
    wrote_html = write_once(html_path, html.encode("utf-8"))
    wrote_pdf = write_once(pdf, content)
    return Rendered(invoice, pdf, html_path, "written" if wrote_pdf or wrote_html else "kept")


def render_finalized(settings: Settings, window: Window | None) -> list[Rendered]:
    """Every finalized invoice of the window's months (of every month when None) in the
    published marts, rendered once: a document already written is kept. The CLI's
    `--period` and `--all`, and the monthly job after it publishes, share it."""
    from billing.warehouse.publish import connect_published

    seller = load_seller(seller_file())
    with connect_published(settings) as con:
        documents = [load_document(con, number) for number in finalized_invoices(con, window)]
    return [write_document(settings.invoice_documents_dir, each, seller) for each in documents]
