{#
    Every invoice line, as finance reads it: finalized lines from the ledger, exactly as they
    were finalized, and the lines of open (draft) invoices as they stand at `as_of`.
#}
with

ledger_lines as (

    {{ ledger_after_this_build(
        'fct_invoice_line_items_finalized', 'int_invoice_lines_finalizing'
    ) }}

),

open_lines as (

    select * from {{ ref('int_invoice_lines_assembled') }}

),

{%- set line_columns = [
    'invoice_line_item_id', 'invoice_id', 'customer_id', 'subscription_id', 'plan_id',
    'charge_id', 'meter_id', 'dimension_value', 'line_type', 'charge_model', 'tier',
    'description', 'currency', 'quantity', 'unit_price', 'amount', 'event_count',
    'billing_period_start', 'billing_period_end', 'source_period_start', 'line_order',
] %}

line_items as (

    select
        {{ line_columns | join(',\n        ') }},
        true as is_finalized
    from ledger_lines
    union all
    select
        {{ line_columns | join(',\n        ') }},
        false as is_finalized
    from open_lines
    where invoice_id not in (select ledger_lines.invoice_id from ledger_lines)

),

line_items_typed as (

    select
        ---------- ids
        invoice_line_item_id,
        invoice_id,
        customer_id,
        subscription_id,
        plan_id,
        charge_id,
        meter_id,
        dimension_value,
        ---------- attributes
        line_type,
        charge_model,
        cast(tier as integer) as tier,
        description,
        currency,
        is_finalized,
        ---------- numerics
        cast(quantity as decimal(38, 9)) as quantity,
        cast(unit_price as decimal(38, 13)) as unit_price,
        cast(amount as decimal(38, 4)) as amount,
        cast(event_count as bigint) as event_count,
        ---------- dates
        billing_period_start,
        billing_period_end,
        source_period_start,
        cast(line_order as integer) as line_order
    from line_items

)

select * from line_items_typed
