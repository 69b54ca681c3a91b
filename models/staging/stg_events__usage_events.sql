{#
    The accepted usage events: one row per distinct `event_id`, parsed and typed, with the
    accepted reversal that cancels it, if any. Reversal events themselves carry no usage.
    This is the only door from staging into metering.
#}
with

routed_events as (

    select * from {{ ref('stg_events__routed_events') }}

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
        routed_events.properties,
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

)

select * from accepted_events
