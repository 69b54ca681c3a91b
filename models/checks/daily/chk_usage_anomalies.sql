{#
    The usage spikes the non-blocking `anomalies` gate reports, with the statistics its
    alert prints.
#}
select
    usage_anomaly_id,
    usage_date,
    customer_id,
    meter_id,
    anomaly_rule,
    observed_quantity,
    observed_event_count,
    baseline_mean,
    baseline_median,
    ratio_to_mean,
    robust_score
from {{ ref('fct_usage_anomalies').include(database=False) }}
