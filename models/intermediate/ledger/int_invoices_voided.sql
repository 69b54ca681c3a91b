{#
    Finalized invoices voided by `billing void` (DECISIONLOG D48), one row per voided
    invoice, with the revision its reissue carries: the n-th void of a customer's period
    makes the period's next invoice revision n, so the reissue has an id and a number of its
    own and the voided one keeps its. `is_latest_void_of_period` marks the void the period's
    reissue replaces: the one place that rule is written (fct_invoices names it, the
    assembled lines take its revision).
#}
with

voids as (

    select * from {{ source('ledger', 'fct_invoice_voids') }}

),

finalized_invoices as (

    select * from {{ source('ledger', 'fct_invoices_finalized') }}

),

invoices_voided as (

    select
        ---------- ids
        voids.invoice_id,
        finalized_invoices.invoice_number,
        finalized_invoices.customer_id,
        ---------- dates
        finalized_invoices.billing_period_start,
        finalized_invoices.billing_period_end,
        finalized_invoices.finalized_at,
        ---------- money, as finalized
        finalized_invoices.currency,
        finalized_invoices.subtotal_amount,
        finalized_invoices.credits_applied_amount,
        finalized_invoices.total_amount,
        ---------- void
        voids.void_reason,
        voids.voided_at,
        cast(row_number() over (
            partition by finalized_invoices.customer_id, finalized_invoices.billing_period_start
            order by voids.voided_at, voids.invoice_id
        ) as integer) as void_sequence,
        cast(count(*) over (
            partition by finalized_invoices.customer_id, finalized_invoices.billing_period_start
        ) as integer) as period_void_count
    from voids
    inner join finalized_invoices
        on voids.invoice_id = finalized_invoices.invoice_id

),

invoices_voided_marked as (

    select
        *,
        void_sequence = period_void_count as is_latest_void_of_period
    from invoices_voided

)

select * from invoices_voided_marked
