{#
    The credit spend this build finalizes: one row per invoice due (int_invoices_credited
    `is_due`) and grant that paid it. Written to ledger.fct_credit_applications_finalized in
    the same transaction as the invoice's lines and header, never alone; later builds start
    each grant's balance from what the ledger says was spent.
#}
with

credit_applications as (

    select * from {{ ref('int_credit_applications') }}

),

invoices_credited as (

    select * from {{ ref('int_invoices_credited') }}

),

applications_finalizing as (

    select
        ---------- ids
        credit_applications.invoice_id,
        credit_applications.grant_id,
        invoices_credited.customer_id,
        invoices_credited.currency,
        ---------- money
        cast(credit_applications.applied_amount_text as decimal(38, 4)) as applied_amount,
        cast(credit_applications.balance_after_text as decimal(38, 4)) as balance_after,
        ---------- dates
        invoices_credited.billing_period_start,
        {{ as_of_timestamp() }} as recorded_at,
        {# The dbt run that computed the row: finalization takes only its own run's. #}
        {{ run_build_id() }} as build_id
    from credit_applications
    inner join invoices_credited
        on credit_applications.invoice_id = invoices_credited.invoice_id
    where invoices_credited.is_due

)

select * from applications_finalizing
