{#
    Each credit grant's balance after each invoice that spent from it: finalized invoices
    from the ledger, open ones as they stand at `as_of`. A grant never spent has one row
    with no invoice, at its full amount. Credit notes (DECISIONLOG D35) are balances like
    grants: `cn_` + the issuing invoice, in force from its period end, spent first.
#}
with

seeded_grants as (

    select * from {{ ref('credit_grants') }}

),

line_items as (

    select * from {{ ref('fct_invoice_line_items') }}

),

credit_grants as (

    select
        grant_id,
        customer_id,
        currency,
        amount,
        granted_on,
        expires_on,
        priority
    from seeded_grants
    union all
    select
        'cn_' || invoice_id as grant_id,
        customer_id,
        currency,
        amount,
        billing_period_end as granted_on,
        cast(null as date) as expires_on,
        {{ credit_note_priority() }} as priority
    from line_items
    where line_type = 'credit_note'

),

ledger_applications as (

    {{ ledger_after_this_build(
        'fct_credit_applications_finalized', 'int_credit_applications_finalizing'
    ) }}

),

open_applications as (

    select * from {{ ref('int_credit_applications') }}

),

open_invoices as (

    select * from {{ ref('int_invoices_credited') }}

),

applications as (

    select
        invoice_id,
        grant_id,
        billing_period_start,
        applied_amount,
        balance_after,
        true as is_finalized
    from ledger_applications
    union all
    select
        open_applications.invoice_id,
        open_applications.grant_id,
        open_invoices.billing_period_start,
        cast(open_applications.applied_amount_text as decimal(38, 4)) as applied_amount,
        cast(open_applications.balance_after_text as decimal(38, 4)) as balance_after,
        false as is_finalized
    from open_applications
    inner join open_invoices
        on open_applications.invoice_id = open_invoices.invoice_id
    where
        open_applications.invoice_id not in (
            select ledger_applications.invoice_id from ledger_applications
        )

),

balances as (

    select
        ---------- ids
        credit_grants.grant_id || ':' || coalesce(applications.invoice_id, 'granted')
            as credit_balance_id,
        credit_grants.grant_id,
        credit_grants.customer_id,
        applications.invoice_id,
        ---------- money
        credit_grants.currency,
        cast(credit_grants.amount as decimal(38, 4)) as granted_amount,
        coalesce(applications.applied_amount, 0) as applied_amount,
        coalesce(applications.balance_after, cast(credit_grants.amount as decimal(38, 4)))
            as balance_after,
        ---------- status
        coalesce(applications.is_finalized, false) as is_finalized,
        ---------- dates
        applications.billing_period_start,
        credit_grants.granted_on,
        credit_grants.expires_on,
        credit_grants.priority
    from credit_grants
    left join applications
        on credit_grants.grant_id = applications.grant_id

)

select * from balances
