"""The one-screen summaries the CLI prints, read from the published marts."""

from __future__ import annotations

import duckdb


def routing_summary(con: duckdb.DuckDBPyConnection) -> str:
    """Accepted / duplicate / quarantined counts, with the quarantine broken down by reason."""
    files, raw, accepted, duplicate, quarantined = con.execute(
        """
        select
            count(*),
            coalesce(sum(raw_row_count), 0),
            coalesce(sum(accepted_count), 0),
            coalesce(sum(duplicate_count), 0),
            coalesce(sum(quarantined_count), 0)
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
    balanced = "yes" if raw == accepted + duplicate + quarantined else "NO"
    lines.append(f"  every event accounted for: {balanced}")
    return "\n".join(lines)


def format_amount(amount, minor_units: int) -> str:
    """Money as finance writes it: thousands separators, the currency's own decimals."""
    return f"{amount:,.{minor_units}f}"


def invoice_tables(con: duckdb.DuckDBPyConnection, period: str | None = None) -> str:
    """One table per billing period: customer, status, subtotal, tax, total, currency."""
    rows = con.execute(
        """
        select
            strftime(invoices.billing_period_start, '%Y-%m') as period,
            invoices.invoice_number,
            invoices.customer_id,
            invoices.customer_name,
            invoices.status,
            invoices.subtotal_amount,
            invoices.tax_amount,
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
    for period_label, number, customer, name, status, subtotal, tax, total, currency, units in rows:
        if period_label != current:
            current = period_label
            blocks.append(
                f"\nInvoices for {period_label}\n"
                f"  {'invoice':<19}{'customer':<11}{'name':<22}{'status':<10}"
                f"{'subtotal':>14}{'tax':>12}{'total':>14}  cur"
            )
        blocks.append(
            f"  {number or '(not yet)':<19}{customer:<11}{name[:21]:<22}{status:<10}"
            f"{format_amount(subtotal, units):>14}{format_amount(tax, units):>12}"
            f"{format_amount(total, units):>14}  {currency}"
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
