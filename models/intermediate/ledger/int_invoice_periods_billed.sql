{#
    Which customer periods are already billed on a finalized invoice, and up to which landed
    file their usage was seen: the period's own invoice, or a later one that carried
    adjustments for it. Events landed after that file are late usage (architecture §6.5).
    Read from the ledger as the previous build left it (source `ledger`); a voided invoice
    bills nothing, so its period is open again and reissued (DECISIONLOG D48).
#}
with

finalized_invoices as (

    {{ ledger_in_force('fct_invoices_finalized') }}

),

finalized_lines as (

    {{ ledger_in_force('fct_invoice_line_items_finalized') }}

),

periods_seen_by_invoice as (

    select
        customer_id,
        billing_period_start,
        billed_through_file_id
    from finalized_invoices
    union all
    select
        finalized_invoices.customer_id,
        finalized_lines.source_period_start as billing_period_start,
        finalized_invoices.billed_through_file_id
    from finalized_lines
    inner join finalized_invoices
        on finalized_lines.invoice_id = finalized_invoices.invoice_id
    where finalized_lines.source_period_start is not null

),

periods_billed as (

    select
        customer_id || ':' || strftime(billing_period_start, '%Y-%m') as customer_period_id,
        customer_id,
        billing_period_start,
        max(billed_through_file_id) as billed_through_file_id
    from periods_seen_by_invoice
    group by customer_id, billing_period_start

)

select * from periods_billed
