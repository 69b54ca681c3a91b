{#
    One invoice per customer and billing period with an active subscription: finalized
    invoices from the append-only ledger, exactly as they were finalized, and draft invoices
    as they stand at `as_of`. A draft has no invoice number yet; it gets one when it is
    finalized (period end + the customer's grace hours). "Finalized" means finalized once
    this build's one ledger transaction commits (macro ledger_after_this_build). A voided
    invoice leaves this table for fct_voided_invoices; the period's reissue names it in
    `replaces_invoice_id` (DECISIONLOG D48).
#}
with

ledger_invoices as (

    {{ ledger_after_this_build(
        'fct_invoices_finalized', 'int_invoices_finalizing'
    ) }}

),

open_invoices as (

    select * from {{ ref('int_invoices_credited') }}

),

invoices_voided as (

    select * from {{ ref('int_invoices_voided') }}

),

last_void_per_period as (

    select
        customer_id,
        billing_period_start,
        invoice_id as replaces_invoice_id,
        invoice_number as replaces_invoice_number
    from invoices_voided
    where is_latest_void_of_period

),

finalized as (

    select
        invoice_id,
        invoice_number,
        customer_id,
        customer_name,
        billing_period_start,
        billing_period_end,
        currency,
        currency_minor_units,
        subtotal_amount,
        discount_amount,
        tax_amount,
        credits_applied_amount,
        total_amount,
        tax_rate,
        'finalized' as status,
        finalized_at,
        line_item_count,
        cast(null as varchar) as hold_reason,
        issued_on,
        net_terms_days,
        due_on
    from ledger_invoices

),

drafts as (

    select
        invoice_id,
        cast(null as varchar) as invoice_number,
        customer_id,
        customer_name,
        billing_period_start,
        billing_period_end,
        currency,
        currency_minor_units,
        cast(subtotal_amount as decimal(38, 4)) as subtotal_amount,
        discount_amount,
        tax_amount,
        credits_applied_amount,
        total_amount,
        tax_rate,
        'draft' as status,
        cast(null as timestamp) as finalized_at,
        line_item_count,
        hold_reason,
        {#- Terms are set when the invoice is issued (D79). #}
        cast(null as date) as issued_on,
        cast(null as integer) as net_terms_days,
        cast(null as date) as due_on
    from open_invoices
    where invoice_id not in (select finalized.invoice_id from finalized)

),

invoices as (

    select * from finalized
    union all
    select * from drafts

),

invoices_with_replaced as (

    select
        invoices.*,
        last_void_per_period.replaces_invoice_id,
        last_void_per_period.replaces_invoice_number
    from invoices
    left join last_void_per_period
        on
            invoices.customer_id = last_void_per_period.customer_id
            and invoices.billing_period_start = last_void_per_period.billing_period_start

)

select * from invoices_with_replaced
