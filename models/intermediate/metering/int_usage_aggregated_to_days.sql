{# Usage per customer x UTC day x meter x dimension value, with each meter's aggregation. #}
with

events_metered as (

    select * from {{ ref('int_events_metered') }}
    where reversed_by_event_id is null

),

usage_per_day as (

    {{ aggregate_meters(
        'events_metered',
        ['customer_id', 'event_date', 'billing_period_start', 'meter_id', 'dimension_value']
    ) }}

)

select * from usage_per_day
