{#
    The period tie-out per customer x billing period x meter, as int_usage_tied_out_to_periods
    keeps it up to date (DECISIONLOG D67), without its batch bookkeeping.
#}
with

periods_tied_out as (

    select * from {{ ref('int_usage_tied_out_to_periods') }}

)

select
    period_reconciliation_id,
    customer_id,
    meter_id,
    status,
    explained_by,
    is_finalized,
    aggregated_quantity,
    invoiced_quantity,
    unpriced_quantity,
    unpriced_event_count,
    late_usage_quantity,
    reversed_after_invoice_quantity,
    unexplained_quantity,
    billing_period_start,
    billed_through_file_id
from periods_tied_out
