{#
    Usage per customer x billing period x meter x dimension value, aggregated from events
    (a month's max or distinct count cannot be added up from days).
#}
with

events_metered as (

    select * from {{ ref('int_events_metered') }}
    where reversed_by_event_id is null

),

usage_per_period as (

    {{ aggregate_meters(
        'events_metered',
        ['customer_id', 'billing_period_start', 'meter_id', 'dimension_value']
    ) }}

)

select * from usage_per_period
