{#
    Every raw row that was not billed and is not a harmless duplicate, with why, where it
    came from and what it said: the list a data producer works through to fix their feed.
#}
with

routed_events as (

    select * from {{ ref('stg_events__routed_events') }}

),

quarantined_events as (

    select
        ---------- ids
        raw_row_id,
        file_name,
        line_number,
        event_id,
        customer_id,
        event_type,
        ---------- reason
        quarantine_reason as reason,
        first_arrival_file_name,
        first_arrival_line_number,
        ---------- payload
        raw_line as raw_payload,
        ---------- timestamps
        event_at,
        loaded_at
    from routed_events
    where event_status = 'quarantined'

)

select * from quarantined_events
