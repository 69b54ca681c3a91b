{#
    Accepted usage events read through every meter of their type: one row per event and
    meter, with the meter's dimension value and the value it aggregates. Reversed events are
    kept, with their reversal, so rating can tell what an earlier invoice saw. The values
    are the readings staging took from the properties when it parsed the event
    (`meter_readings`, DECISIONLOG D57): no JSON is parsed here.
#}
with

usage_events as (

    select * from {{ ref('stg_events__usage_events') }}

),

meters as (

    select * from {{ ref('meters') }}

),

readings as (

    select
        event_id,
        customer_id,
        event_type,
        file_id,
        reversed_by_event_id,
        reversal_file_id,
        event_at,
        event_date,
        {# meter_id, dimension_value, value_text, value_number #}
        {{ explode_meter_readings('meter_readings') }}
    from usage_events

),

events_with_meter_values as (

    select
        ---------- ids
        readings.event_id,
        readings.customer_id,
        readings.event_type,
        meters.meter_id,
        readings.file_id,
        readings.reversed_by_event_id,
        readings.reversal_file_id,
        meters.aggregation,
        {# Unset group_by_property: no dimension; a missing property: the default price. #}
        readings.dimension_value,
        ---------- numerics
        readings.value_number,
        readings.value_text,
        ---------- timestamps
        readings.event_at,
        readings.event_date,
        cast(date_trunc('month', readings.event_at) as date) as billing_period_start
    from readings
    inner join meters
        on readings.meter_id = meters.meter_id

)

select * from events_with_meter_values
