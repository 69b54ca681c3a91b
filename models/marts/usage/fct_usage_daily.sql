{# Usage per customer x UTC day x meter x dimension value, for finance and customers. #}
with

usage_per_day as (

    select * from {{ ref('int_usage_aggregated_to_days') }}

),

meters as (

    select * from {{ ref('meters') }}

),

usage_daily as (

    select
        ---------- ids
        usage_per_day.customer_id,
        usage_per_day.meter_id,
        usage_per_day.dimension_value,
        meters.aggregation,
        meters.unit_name,
        ---------- numerics
        usage_per_day.aggregate_quantity as quantity,
        usage_per_day.event_count,
        ---------- dates
        usage_per_day.event_date as usage_date,
        usage_per_day.billing_period_start
    from usage_per_day
    inner join meters
        on usage_per_day.meter_id = meters.meter_id

)

select * from usage_daily
