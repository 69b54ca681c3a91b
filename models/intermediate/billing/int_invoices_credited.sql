{#
    Open invoices with the credit grants and customer balance they spend
    (int_credit_applications) and the amount due: total = subtotal - discount + tax -
    credits, never below zero (a negative subtotal became a credit note line). `is_due`:
    this build finalizes the invoice (grace passed at `as_of`, not held).
#}
with

invoices_calculated as (

    select * from {{ ref('int_invoices_calculated') }}

),

credit_applications as (

    select * from {{ ref('int_credit_applications') }}

),

credits_per_invoice as (

    select
        invoice_id,
        sum(cast(applied_amount_text as decimal(38, 4))) as credits_applied_amount
    from credit_applications
    group by invoice_id

),

invoices_credited as (

    select
        invoices_calculated.invoice_id,
        invoices_calculated.customer_id,
        invoices_calculated.customer_name,
        invoices_calculated.currency,
        invoices_calculated.currency_minor_units,
        invoices_calculated.subtotal_amount,
        invoices_calculated.discount_amount,
        invoices_calculated.tax_amount,
        invoices_calculated.tax_rate,
        invoices_calculated.line_item_count,
        invoices_calculated.billing_period_start,
        invoices_calculated.billing_period_end,
        invoices_calculated.finalizes_at,
        invoices_calculated.hold_reason,
        invoices_calculated.hold_reason is null
        and {{ is_due_for_finalization(
            'invoices_calculated.finalizes_at', 'invoices_calculated.billing_period_start'
        ) }} as is_due,
        cast(coalesce(credits_per_invoice.credits_applied_amount, 0) as decimal(38, 4))
            as credits_applied_amount,
        cast({{ invoice_total(
            'invoices_calculated.subtotal_amount',
            'invoices_calculated.discount_amount',
            'invoices_calculated.tax_amount',
            'coalesce(credits_per_invoice.credits_applied_amount, 0)'
        ) }} as decimal(38, 4)) as total_amount
    from invoices_calculated
    left join credits_per_invoice
        on invoices_calculated.invoice_id = credits_per_invoice.invoice_id

)

select * from invoices_credited
