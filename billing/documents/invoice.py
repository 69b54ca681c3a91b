"""One invoice as a customer reads it: the content of its document, from the published marts.

The figures are the marts' own (a finalized invoice's rows are the ledger's, copied at
publish); nothing is recomputed here. What is added is layout: lines grouped by charge with
their tiers under them, the period as people read it (inclusive end date), and amounts in
the currency's minor units. Before anything is laid out the rows must add up (lines to the
subtotal, grants to the credits applied, the parts to the total), so a document can never
show an invoice the marts do not.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from billing.rules.calendar import Window
from billing.warehouse.summary import format_amount, format_number


class DocumentError(Exception):
    """An invoice that cannot be rendered (unknown, or rows that do not add up); one line."""


@dataclass(frozen=True)
class Seller:
    """Who issues the invoices: `seller.toml`, edited by people."""

    name: str
    address: tuple[str, ...]
    email: str
    tax_id: str
    payment_instructions: str


SELLER_KEYS = ("name", "address", "email", "tax_id", "payment_instructions")


def load_seller(path: Path) -> Seller:
    """The seller block, refused with the missing key named rather than printed blank."""
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as error:
        raise DocumentError(f"no seller file at {path} (see seller.toml)") from error
    except tomllib.TOMLDecodeError as error:
        raise DocumentError(f"{path} is not valid TOML: {error}") from error
    missing = [key for key in SELLER_KEYS if not values.get(key)]
    if missing:
        raise DocumentError(f"{path} lacks {', '.join(missing)}")
    address = values["address"]
    return Seller(
        name=str(values["name"]),
        address=tuple(str(line) for line in ([address] if isinstance(address, str) else address)),
        email=str(values["email"]),
        tax_id=str(values["tax_id"]),
        payment_instructions=str(values["payment_instructions"]),
    )


@dataclass(frozen=True)
class Row:
    """One row of the lines table; `detail` rows (tiers) sit indented under their charge."""

    description: str
    quantity: str
    unit_price: str
    amount: str
    detail: bool = False
    note: str = ""


@dataclass(frozen=True)
class Section:
    title: str
    rows: tuple[Row, ...]


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything the template prints, already formatted."""

    invoice_id: str
    invoice_number: str | None
    status: str
    customer_id: str
    customer_name: str
    currency: str
    period: str
    issued_on: str | None
    due_on: str | None
    net_terms_days: int | None
    replaces_invoice_number: str | None
    sections: tuple[Section, ...]
    totals: tuple[tuple[str, str], ...]
    credits: tuple[tuple[str, str, str], ...]
    amount_due: str
    created: datetime
    period_start: date

    @property
    def is_final(self) -> bool:
        return self.status == "finalized"

    @property
    def title(self) -> str:
        return f"Invoice {self.invoice_number}" if self.is_final else "Draft invoice"


# The lines table's sections, in line order (fct_invoice_line_items.line_type).
SECTION_TITLES = {
    "trial": "Subscription",
    "base_fee": "Subscription",
    "usage": "Usage",
    "charge_maximum": "Charge limits",
    "charge_minimum": "Charge limits",
    "minimum_commitment": "Minimum commitment",
    "adjustment": "Adjustments to earlier periods",
    "credit_note": "Credit note",
}

HEADER_SQL = """
select invoice_id, invoice_number, status, customer_id, customer_name,
    billing_period_start, billing_period_end, currency, currency_minor_units,
    subtotal_amount, discount_amount, tax_amount, credits_applied_amount, total_amount,
    tax_rate, finalized_at, issued_on, net_terms_days, due_on, replaces_invoice_number
from fct_invoices
where invoice_id = $1 or invoice_number = $1
"""

LINES_SQL = """
select line_type, subscription_id, charge_id, dimension_value, tier, description,
    quantity, unit_price, amount, source_period_start
from fct_invoice_line_items
where invoice_id = $1
order by line_order, subscription_id, charge_id nulls first, dimension_value nulls first,
    tier nulls first, source_period_start nulls first, invoice_line_item_id
"""

CREDITS_SQL = """
select grant_id, applied_amount, balance_after
from fct_credit_balances
where invoice_id = $1 and applied_amount != 0
order by grant_id
"""


def long_date(day: date) -> str:
    """`4 October 2026`: the unambiguous form, whatever the reader's locale."""
    return f"{day.day} {day:%B %Y}"


def period_label(start: date, end_exclusive: date) -> str:
    """A billing period as people read it: the last day it includes, not the next period's
    first (the marts keep the exclusive end)."""
    return f"{long_date(start)} \N{EN DASH} {long_date(end_exclusive - timedelta(days=1))}"


def charge_heading(description: str) -> str:
    """A tiered charge's name: its lines' description without the ` (tier N…)` the rating
    models append to each tier."""
    return description.split(" (tier ", 1)[0]


def tier_label(description: str, tier: int) -> str:
    """`Tier 2` or `Tier 2, all units` (volume and staircase price every unit at one tier)."""
    return f"Tier {tier}, all units" if "all units)" in description else f"Tier {tier}"


def line_rows(lines: list[tuple], minor_units: int) -> tuple[Section, ...]:
    """The lines table: one section per kind of line; a charge with tiers becomes a heading
    row (its total) with a detail row per tier, so the tier arithmetic can be checked."""
    grouped: dict[str, list[Row]] = {}
    index = 0
    while index < len(lines):
        line_type, _, _, _, tier, description, *_ = lines[index]
        rows = grouped.setdefault(SECTION_TITLES.get(line_type, line_type), [])
        if line_type == "usage" and tier is not None:
            end = index
            while end < len(lines) and lines[end][:4] == lines[index][:4]:
                end += 1
            tiers = lines[index:end]
            rows.append(
                Row(
                    description=charge_heading(description or ""),
                    quantity="",
                    unit_price="",
                    amount=format_amount(sum(t[8] for t in tiers), minor_units),
                )
            )
            rows += [
                Row(
                    description=tier_label(t[5] or "", t[4]),
                    quantity=format_number(t[6]),
                    unit_price=format_number(t[7]),
                    amount=format_amount(t[8], minor_units),
                    detail=True,
                )
                for t in tiers
            ]
            index = end
            continue
        quantity, unit_price, amount, source_period = lines[index][6:10]
        rows.append(
            Row(
                description=description or "",
                quantity=format_number(quantity),
                unit_price=format_number(unit_price),
                amount=format_amount(amount, minor_units),
                note=f"Corrects {source_period:%B %Y}" if source_period is not None else "",
            )
        )
        index += 1
    return tuple(Section(title, tuple(rows)) for title, rows in grouped.items())


def tax_label(tax_rate: Decimal) -> str:
    """`Tax (8.75 %)`: the rate as a percentage without the trailing zeros of its type."""
    return f"Tax ({format_number(tax_rate * 100)} %)"


def check_adds_up(header: dict, lines: list[tuple], credits: list[tuple]) -> None:
    """Refuse to lay out an invoice whose rows disagree with its header."""
    problems = []
    lines_total = sum((line[8] for line in lines), Decimal(0))
    if lines_total != header["subtotal_amount"]:
        problems.append(f"lines sum to {lines_total}, subtotal is {header['subtotal_amount']}")
    spent = sum((row[1] for row in credits), Decimal(0))
    if spent != header["credits_applied_amount"]:
        problems.append(
            f"grants record {spent} spent, invoice applies {header['credits_applied_amount']}"
        )
    parts = (
        header["subtotal_amount"]
        - header["discount_amount"]
        + header["tax_amount"]
        - header["credits_applied_amount"]
    )
    if parts != header["total_amount"]:
        problems.append(f"total {header['total_amount']} does not follow from its parts ({parts})")
    if problems:
        raise DocumentError(
            f"invoice {header['invoice_number'] or header['invoice_id']} is not rendered: "
            + "; ".join(problems)
        )


def document_for(header: dict, lines: list[tuple], credits: list[tuple]) -> InvoiceDocument:
    """The document's content from one invoice's header, lines and credit spend."""
    check_adds_up(header, lines, credits)
    units = header["currency_minor_units"]
    totals = [("Subtotal", format_amount(header["subtotal_amount"], units))]
    if header["discount_amount"]:
        totals.append(("Discount", format_amount(-header["discount_amount"], units)))
    totals.append((tax_label(header["tax_rate"]), format_amount(header["tax_amount"], units)))
    if header["credits_applied_amount"]:
        totals.append(("Credits applied", format_amount(-header["credits_applied_amount"], units)))
    start = header["billing_period_start"]
    # Final documents carry the day they became final; drafts the period's start, so that
    # the same draft rows give the same bytes too.
    created = header["finalized_at"] or datetime.combine(start, datetime.min.time())
    return InvoiceDocument(
        invoice_id=header["invoice_id"],
        invoice_number=header["invoice_number"],
        status=header["status"],
        customer_id=header["customer_id"],
        customer_name=header["customer_name"] or header["customer_id"],
        currency=header["currency"],
        period=period_label(start, header["billing_period_end"]),
        issued_on=long_date(header["issued_on"]) if header["issued_on"] else None,
        due_on=long_date(header["due_on"]) if header["due_on"] else None,
        net_terms_days=header["net_terms_days"],
        replaces_invoice_number=header["replaces_invoice_number"],
        sections=line_rows(lines, units),
        totals=tuple(totals),
        credits=tuple(
            (grant, format_amount(-applied, units), format_amount(balance, units))
            for grant, applied, balance in credits
        ),
        amount_due=format_amount(header["total_amount"], units),
        created=created,
        period_start=start,
    )


def load_document(con: duckdb.DuckDBPyConnection, invoice: str) -> InvoiceDocument:
    """The document of one invoice, by id or number, from the published marts."""
    cursor = con.execute(HEADER_SQL, [invoice])
    found = cursor.fetchone()
    if found is None:
        raise DocumentError(
            f"no invoice {invoice!r} in the published marts (give an invoice_id or an "
            "invoice number such as INV-2026-09-000001)"
        )
    header = dict(zip([column[0] for column in cursor.description], found, strict=True))
    lines = con.execute(LINES_SQL, [header["invoice_id"]]).fetchall()
    credits = con.execute(CREDITS_SQL, [header["invoice_id"]]).fetchall()
    return document_for(header, lines, credits)


def finalized_invoices(con: duckdb.DuckDBPyConnection, window: Window | None) -> list[str]:
    """The numbers of the finalized invoices of the window's months (of every month when
    None), in number order."""
    start, end = (window.start, window.end) if window else (None, None)
    rows = con.execute(
        "select invoice_number from fct_invoices where status = 'finalized' "
        "and (?::date is null or (billing_period_start >= ?::date "
        "and billing_period_start < ?::date)) order by invoice_number",
        [start, start, end],
    ).fetchall()
    return [row[0] for row in rows]
