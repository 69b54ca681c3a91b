{#
    Daily usage as the `daily_usage` gate reads it: one row per UTC day x customer x meter x
    dimension, with the dimension's empty key spelled out so the uniqueness rule compares it.
#}
select
    usage_date,
    customer_id,
    meter_id,
    coalesce(dimension_value, '') as dimension_key,
    quantity,
    event_count
from {{ ref('fct_usage_daily').include(database=False) }}
