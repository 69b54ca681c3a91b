{#
    The ledger holds at most one invoice in force (finalized, not voided) per customer and
    period. A voided invoice stays in the ledger beside its reissue (DECISIONLOG D48), so
    the uniqueness holds over invoices in force, not over every ledger row.
#}
with

invoices_in_force as (

    {{ ledger_after_this_build('fct_invoices_finalized', 'int_invoices_finalizing') }}

)

select
    customer_id,
    billing_period_start,
    count(*) as invoice_count
from invoices_in_force
group by customer_id, billing_period_start
having count(*) > 1
