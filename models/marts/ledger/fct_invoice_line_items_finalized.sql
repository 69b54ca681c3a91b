{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='fail'
    )
}}
{#
    The append-only ledger of finalized invoice lines. When an invoice's period end plus
    grace has passed at `as_of`, its lines are copied here once, with the last landed file
    they saw and the invoice's discount, tax and credits; no later build, rate card, late event or `--full-refresh` rewrites them
    (full_refresh=false). The header ledger is derived from these lines, so an interrupted
    run heals itself on the next one.
#}
with

invoices_calculated as (

    select * from {{ ref('int_invoices_credited') }}

),

invoice_lines as (

    select * from {{ ref('int_invoice_lines_assembled') }}

),

landed_files as (

    select * from {{ ref('fct_landed_files') }}

),

already_finalized as (

    {% if is_incremental() -%}
    select ledger.invoice_id from {{ this }} as ledger
    {%- else -%}
    select cast(null as varchar) as invoice_id
    where false
    {%- endif %}

),

invoices_due as (

    select
        invoice_id,
        discount_amount,
        tax_amount,
        credits_applied_amount,
        finalizes_at
    from invoices_calculated
    where
        {{ is_due_for_finalization('finalizes_at', 'billing_period_start') }}
        and invoice_id not in (select already_finalized.invoice_id from already_finalized)

),

watermark as (

    select coalesce(max(file_id), 0) as billed_through_file_id
    from landed_files

),

lines_finalized as (

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
        cast(invoice_lines.unit_price as decimal(18, 9)) as unit_price,
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
        {{ as_of_timestamp() }} as recorded_at
    from invoice_lines
    inner join invoices_due
        on invoice_lines.invoice_id = invoices_due.invoice_id
    cross join watermark

)

select * from lines_finalized
