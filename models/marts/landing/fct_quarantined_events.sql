{#
    Every raw row that was not billed and is not a harmless duplicate, with why, where it
    came from and what it said: the list a data producer works through to fix their feed.
#}
with

routed_events as (

    select * from {{ ref('stg_events__routed_events') }}

),

parsed_events as (

    select * from {{ ref('stg_events__parsed_events') }}

),

quarantined_events as (

    select
        ---------- ids
        routed_events.raw_row_id,
        routed_events.file_name,
        routed_events.line_number,
        routed_events.event_id,
        routed_events.customer_id,
        routed_events.event_type,
        ---------- reason
        routed_events.quarantine_reason as reason,
        routed_events.first_arrival_file_name,
        routed_events.first_arrival_line_number,
        ---------- payload
        parsed_events.raw_line as raw_payload,
        ---------- timestamps
        routed_events.event_at,
        routed_events.loaded_at
    from routed_events
    inner join parsed_events
        on
            routed_events.file_id = parsed_events.file_id
            and routed_events.line_number = parsed_events.line_number
    where routed_events.event_status = 'quarantined'

)

select * from quarantined_events
