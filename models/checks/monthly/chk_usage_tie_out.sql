{#
    The period tie-out as the `usage_tie_out` gate reads it: invoiced usage per customer x
    period x meter that the events, unpriced, late and reversed usage do not explain.
#}
select
    period_reconciliation_id,
    customer_id,
    meter_id,
    billing_period_start,
    status,
    unexplained_quantity
from {{ ref('fct_reconciliation_periods').include(database=False) }}
