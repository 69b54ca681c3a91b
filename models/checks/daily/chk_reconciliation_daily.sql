{#
    The daily reconciliation as the `reconciliation` gate reads it (status and routing delta)
    and as `billing quality` totals it (the counts).
#}
select
    reconciliation_id,
    reconciliation_date,
    customer_id,
    event_type,
    status,
    status_reason,
    routing_delta,
    producer_delta,
    received_count,
    accepted_count,
    duplicate_count,
    quarantined_count,
    producer_reported_count,
    billed_count
from {{ ref('fct_reconciliation_daily').include(database=False) }}
