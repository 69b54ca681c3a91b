{#
    The ledger lines this build finalizes: every line of each open invoice whose period end
    plus grace has passed at `as_of` (and that is not held), with the last landed file it
    saw and the invoice's discount, tax and credits. `billing build` copies these rows into
    ledger.fct_invoice_line_items_finalized only after every test and gate has passed, in
    the same transaction as the credit spend and the headers (billing/warehouse/ledger.py).
#}
with

invoices_credited as (

    select * from {{ ref('int_invoices_credited') }}

),

invoice_lines as (

    select * from {{ ref('int_invoice_lines_assembled') }}

),

routed_events as (

    select * from {{ ref('stg_events__routed_events') }}

),

invoices_due as (

    select
        invoice_id,
        discount_amount,
        tax_amount,
        credits_applied_amount,
        finalizes_at
    from invoices_credited
    where is_due

),

watermark as (

    {# The last landed file with events: every event of a later file is late usage. #}
    select coalesce(max(file_id), 0) as billed_through_file_id
    from routed_events

),

lines_finalizing as (

    select
        ---------- ids
        invoice_lines.invoice_line_item_id,
        invoice_lines.invoice_id,
        invoice_lines.customer_id,
        invoice_lines.subscription_id,
        invoice_lines.plan_id,
        invoice_lines.charge_id,
        invoice_lines.meter_id,
        invoice_lines.dimension_value,
        ---------- attributes
        invoice_lines.line_type,
        invoice_lines.charge_model,
        cast(invoice_lines.tier as integer) as tier,
        invoice_lines.description,
        invoice_lines.currency,
        ---------- numerics
        cast(invoice_lines.quantity as decimal(38, 9)) as quantity,
        cast(invoice_lines.unit_price as decimal(38, 13)) as unit_price,
        cast(invoice_lines.amount as decimal(38, 4)) as amount,
        cast(invoice_lines.event_count as bigint) as event_count,
        ---------- dates
        invoice_lines.billing_period_start,
        invoice_lines.billing_period_end,
        invoice_lines.source_period_start,
        cast(invoice_lines.line_order as integer) as line_order,
        ---------- invoice-level amounts, fixed at finalization
        cast(invoices_due.discount_amount as decimal(38, 4)) as invoice_discount_amount,
        cast(invoices_due.tax_amount as decimal(38, 4)) as invoice_tax_amount,
        cast(invoices_due.credits_applied_amount as decimal(38, 4))
            as invoice_credits_applied_amount,
        ---------- finality
        invoices_due.finalizes_at as invoice_finalized_at,
        watermark.billed_through_file_id,
        {{ as_of_timestamp() }} as recorded_at,
        {# The dbt run that computed the row: finalization takes only its own run's. #}
        {{ run_build_id() }} as build_id
    from invoice_lines
    inner join invoices_due
        on invoice_lines.invoice_id = invoices_due.invoice_id
    cross join watermark

)

select * from lines_finalizing
