{#
    The accepted events: one row per distinct `event_id`, parsed and typed. This is the only
    door from staging into metering.
#}
with

routed_events as (

    select * from {{ ref('stg_events__routed_events') }}

),

accepted_events as (

    select
        ---------- ids
        event_id,
        customer_id,
        event_type,
        reverses_event_id,
        raw_row_id,
        ---------- payload
        properties,
        ---------- timestamps
        event_at,
        event_date,
        loaded_at
    from routed_events
    where event_status = 'accepted'

)

select * from accepted_events
