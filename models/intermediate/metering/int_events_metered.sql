{#
    Accepted usage events read through every meter of their type: one row per event and
    meter, with the meter's dimension value and the value it aggregates. Reversed events are
    kept, with their reversal, so rating can tell what an earlier invoice saw. The values
    are the readings staging took from the properties when it parsed the event
    (`meter_readings`, DECISIONLOG D57): no JSON is parsed here.

    Incremental (DECISIONLOG D61): a build recomputes only the event ids routing changed in
    batches it has not taken. An id that no longer has a reading (its event is no longer
    accepted) leaves a row without `meter_id`, which `replace_keys` reads as "delete it".
    A change of the meters re-parses the rows of their event types (D57), so their ids
    come back through routing.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='event_id',
    on_schema_change='fail',
    meta={'tombstone_when': 'meter_id is null'}
) }}

{%- set routed_up_to = incremental_watermark('routed_through_batch') %}
{#- The batch of the rows this build writes: their data tests read them (D68). #}
{%- set written_batch = next_batch_number('written_batch') %}

with
{%- if routed_up_to is not none %}

event_ids_changed as (

    {{ event_ids_routed_since(routed_up_to) }}

),
{%- endif %}

routed_through as (

    {{ routed_through_batch() }}

),

usage_events as (

    select * from {{ ref('stg_events__usage_events') }}
    {%- if routed_up_to is not none %}
        where event_id in (select event_ids_changed.event_id from event_ids_changed)
    {%- endif %}

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

),

events_metered as (

    select
        events_with_meter_values.*,
        ---------- batches (DECISIONLOG D61)
        routed_through.routed_through_batch
    from events_with_meter_values
    cross join routed_through
    {%- if routed_up_to is not none %}
        union all by name
        {# The changed ids with no reading left: deleted by the replace_keys strategy. #}
        select
            event_ids_changed.event_id,
            routed_through.routed_through_batch
        from event_ids_changed
        cross join routed_through
        where
            event_ids_changed.event_id not in (
                select events_with_meter_values.event_id from events_with_meter_values
            )
    {%- endif %}

)

select
    events_metered.*,
    cast({{ written_batch }} as bigint) as written_batch
from events_metered
