{#
    Accepted usage events read through every meter of their type: one row per event and
    meter, with the meter's dimension value and the value it aggregates. Reversed events are
    kept, with their reversal, so rating can tell what an earlier invoice saw. The single
    place event properties become quantities.
#}
{%- set value_text = "json_extract_string(usage_events.properties, "
    ~ "'$.\"' || meters.value_property || '\"')" -%}

with

usage_events as (

    select * from {{ ref('stg_events__usage_events') }}

),

meters as (

    select * from {{ ref('meters') }}

),

events_with_meter_values as (

    select
        ---------- ids
        usage_events.event_id,
        usage_events.customer_id,
        usage_events.event_type,
        meters.meter_id,
        usage_events.file_id,
        usage_events.reversed_by_event_id,
        usage_events.reversal_file_id,
        meters.aggregation,
        {# Unset group_by_property: no dimension; a missing property: the default price. #}
        case
            when meters.group_by_property is not null
                then
                    json_extract_string(
                        usage_events.properties, '$."' || meters.group_by_property || '"'
                    )
        end as dimension_value,
        ---------- numerics
        case
            when meters.value_property is not null and meters.aggregation != 'unique_count'
                then {{ exact_decimal(value_text) }}
        end as value_number,
        case
            when meters.value_property is not null
                then
                    json_extract_string(
                        usage_events.properties, '$."' || meters.value_property || '"'
                    )
        end as value_text,
        ---------- timestamps
        usage_events.event_at,
        usage_events.event_date,
        cast(date_trunc('month', usage_events.event_at) as date) as billing_period_start
    from usage_events
    inner join meters
        on usage_events.event_type = meters.event_type

)

select * from events_with_meter_values
