{#
    The accepted usage events: one row per distinct `event_id`, parsed and typed, with the
    accepted reversal that cancels it, if any. Reversal events themselves carry no usage.
    This is the only door from staging into metering.

    Incremental (DECISIONLOG D58): a build recomputes only the event ids whose routed rows
    changed in a batch it has not seen, and the events their reversals name. An id that is
    no longer accepted (its file was withdrawn) leaves a row without `raw_row_id`, which the
    `replace_keys` strategy reads as "delete this event" (macros/incremental.sql).
#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='event_id',
    on_schema_change='fail',
    meta={'tombstone_when': 'raw_row_id is null'}
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

routed_events as (

    select * from {{ ref('stg_events__routed_events') }}
    {%- if routed_up_to is not none %}
        where
            event_id in (select event_ids_changed.event_id from event_ids_changed)
            or reverses_event_id in (select event_ids_changed.event_id from event_ids_changed)
    {%- endif %}

),

accepted_reversals as (

    select
        reverses_event_id,
        event_id as reversed_by_event_id,
        file_id as reversal_file_id,
        event_at as reversed_at
    from routed_events
    where event_status = 'accepted' and reverses_event_id is not null

),

accepted_events as (

    select
        ---------- ids
        routed_events.event_id,
        routed_events.customer_id,
        routed_events.event_type,
        routed_events.raw_row_id,
        routed_events.file_id,
        accepted_reversals.reversed_by_event_id,
        accepted_reversals.reversal_file_id,
        ---------- payload
        routed_events.meter_readings,
        ---------- timestamps
        routed_events.event_at,
        routed_events.event_date,
        routed_events.loaded_at,
        accepted_reversals.reversed_at
    from routed_events
    left join accepted_reversals
        on routed_events.event_id = accepted_reversals.reverses_event_id
    where routed_events.event_status = 'accepted' and routed_events.reverses_event_id is null

),

usage_events as (

    select
        accepted_events.*,
        ---------- batches (DECISIONLOG D58)
        routed_through.routed_through_batch
    from accepted_events
    cross join routed_through
    {%- if routed_up_to is not none %}
        union all by name
        {# The changed ids no longer accepted: deleted by the replace_keys strategy. #}
        select
            event_ids_changed.event_id,
            routed_through.routed_through_batch
        from event_ids_changed
        cross join routed_through
        where
            event_ids_changed.event_id not in (
                select accepted_events.event_id from accepted_events
            )
    {%- endif %}

)

select
    usage_events.*,
    cast({{ written_batch }} as bigint) as written_batch
from usage_events
