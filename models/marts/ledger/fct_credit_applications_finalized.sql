{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
        on_schema_change='fail'
    )
}}
{#
    The append-only ledger of credit spent by finalized invoices, one row per invoice and
    grant, written once when the invoice is finalized. Later builds start each grant's
    balance from what this ledger says was spent.
#}
with

credit_applications as (

    select * from {{ ref('int_credit_applications') }}

),

invoices_credited as (

    select * from {{ ref('int_invoices_credited') }}

),

already_finalized as (

    {% if is_incremental() -%}
    select distinct ledger.invoice_id from {{ this }} as ledger
    {%- else -%}
    select cast(null as varchar) as invoice_id
    where false
    {%- endif %}

),

applications_finalized as (

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
        {{ as_of_timestamp() }} as recorded_at
    from credit_applications
    inner join invoices_credited
        on credit_applications.invoice_id = invoices_credited.invoice_id
    where
        {{ is_due_for_finalization(
            'invoices_credited.finalizes_at', 'invoices_credited.billing_period_start'
        ) }}
        and credit_applications.invoice_id not in (
            select already_finalized.invoice_id from already_finalized
        )

)

select * from applications_finalized
