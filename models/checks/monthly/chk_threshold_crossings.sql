{#
    The usage thresholds reached by a draft invoice: what `billing build` and
    `billing quality` raise as `usage_threshold` alerts, once each (D78).
#}
select
    threshold_crossing_id,
    threshold_id,
    customer_id,
    meter_id,
    threshold_kind,
    threshold_unit,
    currency_minor_units,
    threshold,
    observed_value,
    billing_period_start,
    billing_period_end
from {{ ref('fct_threshold_crossings').include(database=False) }}
where invoice_status = 'draft'
