{#
    The lines of every voided invoice (fct_voided_invoices), exactly as they were finalized:
    the ledger keeps them unchanged after a void (DECISIONLOG D48), and finance needs them
    to compare a voided invoice with its reissue line by line.
#}
with

ledger_lines as (

    select * from {{ source('ledger', 'fct_invoice_line_items_finalized') }}

),

invoices_voided as (

    select * from {{ ref('int_invoices_voided') }}

),

voided_lines as (

    select
        ---------- ids
        ledger_lines.invoice_line_item_id,
        ledger_lines.invoice_id,
        invoices_voided.invoice_number,
        ledger_lines.customer_id,
        ledger_lines.subscription_id,
        ledger_lines.plan_id,
        ledger_lines.charge_id,
        ledger_lines.meter_id,
        ledger_lines.dimension_value,
        ---------- attributes
        ledger_lines.line_type,
        ledger_lines.charge_model,
        cast(ledger_lines.tier as integer) as tier,
        ledger_lines.description,
        ledger_lines.currency,
        ---------- numerics
        cast(ledger_lines.quantity as decimal(38, 9)) as quantity,
        cast(ledger_lines.unit_price as decimal(38, 13)) as unit_price,
        cast(ledger_lines.amount as decimal(38, 4)) as amount,
        cast(ledger_lines.event_count as bigint) as event_count,
        ---------- dates
        ledger_lines.billing_period_start,
        ledger_lines.billing_period_end,
        ledger_lines.source_period_start,
        cast(ledger_lines.line_order as integer) as line_order,
        invoices_voided.voided_at
    from ledger_lines
    inner join invoices_voided
        on ledger_lines.invoice_id = invoices_voided.invoice_id

)

select * from voided_lines
