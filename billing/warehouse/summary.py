"""The one-screen summaries the CLI prints, read from the published marts."""

from __future__ import annotations

import duckdb


def routing_summary(con: duckdb.DuckDBPyConnection) -> str:
    """Accepted / duplicate / quarantined / withdrawn counts, quarantine by reason."""
    files, raw, accepted, duplicate, quarantined, withdrawn = con.execute(
        """
        select
            count(*),
            coalesce(sum(raw_row_count), 0),
            coalesce(sum(accepted_count), 0),
            coalesce(sum(duplicate_count), 0),
            coalesce(sum(quarantined_count), 0),
            coalesce(sum(withdrawn_count), 0)
        from fct_landed_files
        """
    ).fetchone()
    reasons = con.execute(
        "select reason, count(*) from fct_quarantined_events group by reason order by 2 desc, 1"
    ).fetchall()
    width = max(len(f"{raw:,}"), 9)
    lines = [
        f"Events from {files:,} landed files",
        f"  received     {raw:>{width},}",
        f"  accepted     {accepted:>{width},}",
        f"  duplicate    {duplicate:>{width},}",
        f"  quarantined  {quarantined:>{width},}",
    ]
    lines += [f"    {reason:<24} {count:>{width - 12},}" for reason, count in reasons]
    if withdrawn:
        lines.append(f"  withdrawn    {withdrawn:>{width},}")
    balanced = "yes" if raw == accepted + duplicate + quarantined + withdrawn else "NO"
    lines.append(f"  every event accounted for: {balanced}")
    return "\n".join(lines)


def format_amount(amount, minor_units: int) -> str:
    """Money as finance writes it: thousands separators, the currency's own decimals."""
    return f"{amount:,.{minor_units}f}"


INVOICE_COLUMNS = (
    f"  {'invoice':<19}{'customer':<11}{'name':<18}{'status':<10}"
    f"{'subtotal':>14}{'discount':>12}{'tax':>12}{'credits':>12}{'total':>14}  cur"
)


def invoice_tables(con: duckdb.DuckDBPyConnection, period: str | None = None) -> str:
    """One table per billing period: customer, status, and every amount the total is made
    of (subtotal - discount + tax - credits = total), so a reader can check each row."""
    rows = con.execute(
        """
        select
            strftime(invoices.billing_period_start, '%Y-%m') as period,
            invoices.invoice_number,
            invoices.customer_id,
            invoices.customer_name,
            invoices.status,
            invoices.subtotal_amount,
            invoices.discount_amount,
            invoices.tax_amount,
            invoices.credits_applied_amount,
            invoices.total_amount,
            invoices.currency,
            invoices.currency_minor_units
        from fct_invoices as invoices
        where ? is null or strftime(invoices.billing_period_start, '%Y-%m') = ?
        order by invoices.billing_period_start, invoices.invoice_number, invoices.customer_id
        """,
        [period, period],
    ).fetchall()
    if not rows:
        return f"no invoices{' for ' + period if period else ''}"
    blocks: list[str] = []
    current = None
    for period_label, number, customer, name, status, *amounts, currency, units in rows:
        if period_label != current:
            current = period_label
            blocks.append(f"\nInvoices for {period_label}\n{INVOICE_COLUMNS}")
        subtotal, discount, tax, credits, total = (format_amount(a, units) for a in amounts)
        blocks.append(
            f"  {number or '(not yet)':<19}{customer:<11}{name[:17]:<18}{status:<10}"
            f"{subtotal:>14}{discount:>12}{tax:>12}{credits:>12}{total:>14}  {currency}"
        )
    totals = con.execute(
        """
        select currency, count(*), sum(total_amount), max(currency_minor_units)
        from fct_invoices
        where ? is null or strftime(billing_period_start, '%Y-%m') = ?
        group by currency
        order by currency
        """,
        [period, period],
    ).fetchall()
    blocks.append(
        "\n  totals: "
        + "; ".join(
            f"{count} invoice{'s' if count != 1 else ''}, {format_amount(total, units)} {cur}"
            for cur, count, total, units in totals
        )
    )
    return "\n".join(blocks)


def format_number(value) -> str:
    """A quantity or unit price without the trailing zeros of its 9-decimal type."""
    if value is None:
        return ""
    text = f"{value:,f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def invoice_lines(con: duckdb.DuckDBPyConnection, invoice: str) -> str | None:
    """One invoice, line by line, then its totals; `invoice` is its id or its number.

    None when the published marts hold no such invoice.
    """
    header = con.execute(
        """
        select invoice_id, invoice_number, customer_id, customer_name,
            strftime(billing_period_start, '%Y-%m'), status, currency, currency_minor_units,
            subtotal_amount, discount_amount, tax_amount, credits_applied_amount, total_amount
        from fct_invoices
        where invoice_id = ? or invoice_number = ?
        """,
        [invoice, invoice],
    ).fetchone()
    if header is None:
        return None
    invoice_id, number, customer, name, period, status, currency, units, *amounts = header
    lines = con.execute(
        """
        select line_type, description, quantity, unit_price, amount
        from fct_invoice_line_items
        where invoice_id = ?
        order by line_order, subscription_id, charge_id nulls first, tier nulls first,
            source_period_start nulls first, invoice_line_item_id
        """,
        [invoice_id],
    ).fetchall()
    out = [
        f"Invoice {number or '(no number yet)'}, {status} (invoice_id {invoice_id})",
        f"  customer {customer} {name}, period {period}, {currency}",
        "",
        f"  {'line':<20}{'description':<44}{'quantity':>16}{'unit price':>14}{'amount':>14}",
    ]
    for line_type, description, quantity, unit_price, amount in lines:
        out.append(
            f"  {line_type:<20}{(description or '')[:43]:<44}{format_number(quantity):>16}"
            f"{format_number(unit_price):>14}{format_amount(amount, units):>14}"
        )
    labels = ("subtotal", "discount", "tax", "credits", "total")
    out.append("")
    out += [
        f"  {label:>94}{format_amount(amount, units):>14}"
        for label, amount in zip(labels, amounts, strict=True)
    ]
    out.append(f"  {len(lines)} line{'s' if len(lines) != 1 else ''}")
    return "\n".join(out)
