{# Every invoice line, as finance reads it: what was billed, at which price, and why. #}
with

invoice_lines as (

    select * from {{ ref('int_invoice_lines_assembled') }}

),

line_items as (

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
        tier,
        description,
        currency,
        ---------- numerics
        cast(quantity as decimal(38, 9)) as quantity,
        cast(unit_price as decimal(18, 9)) as unit_price,
        cast(amount as decimal(38, 4)) as amount,
        event_count,
        ---------- dates
        billing_period_start,
        billing_period_end,
        source_period_start,
        line_order
    from invoice_lines

)

select * from line_items
