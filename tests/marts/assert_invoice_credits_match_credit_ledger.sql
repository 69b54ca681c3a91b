{#
    Every finalized invoice applies exactly the credit the credit ledger says it spent,
    invoice by invoice (DECISIONLOG D34), and the credit ledger holds no spend of an invoice
    the ledger does not hold. Read over the ledger as this build leaves it. One row per
    violation.
#}
{{ config(meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}

with

ledger_invoices as (

    {{ ledger_after_this_build('fct_invoices_finalized', 'int_invoices_finalizing') }}

),

ledger_applications as (

    {{ ledger_after_this_build(
        'fct_credit_applications_finalized', 'int_credit_applications_finalizing'
    ) }}

),

spent_per_invoice as (

    select
        invoice_id,
        sum(applied_amount) as applied_amount
    from ledger_applications
    group by invoice_id

),

problems as (

    select
        coalesce(ledger_invoices.invoice_id, spent_per_invoice.invoice_id) as invoice_id,
        ledger_invoices.credits_applied_amount,
        spent_per_invoice.applied_amount as credit_ledger_amount
    from ledger_invoices
    full outer join spent_per_invoice
        on ledger_invoices.invoice_id = spent_per_invoice.invoice_id
    where
        ledger_invoices.invoice_id is null
        or ledger_invoices.credits_applied_amount != coalesce(spent_per_invoice.applied_amount, 0)

)

select * from problems
