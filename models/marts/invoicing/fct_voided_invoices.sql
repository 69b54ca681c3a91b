{#
    Finalized invoices voided by `billing void` (DECISIONLOG D48), as they were finalized,
    with the reason and what replaced them: the period's invoice in fct_invoices whose
    `replaces_invoice_id` names this one.
#}
with

invoices_voided as (

    select * from {{ ref('int_invoices_voided') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

voided_invoices as (

    select
        ---------- ids
        invoices_voided.invoice_id,
        invoices_voided.invoice_number,
        invoices_voided.customer_id,
        ---------- dates
        invoices_voided.billing_period_start,
        invoices_voided.billing_period_end,
        ---------- money
        invoices_voided.currency,
        invoices_voided.subtotal_amount,
        invoices_voided.credits_applied_amount,
        invoices_voided.total_amount,
        invoices_voided.finalized_at,
        ---------- void
        invoices_voided.void_reason,
        invoices_voided.voided_at,
        invoices.invoice_id as replaced_by_invoice_id,
        invoices.invoice_number as replaced_by_invoice_number,
        invoices.status as replaced_by_status
    from invoices_voided
    left join invoices
        on invoices_voided.invoice_id = invoices.replaces_invoice_id

)

select * from voided_invoices
