{#
    Every raw row routed to exactly one of accepted, duplicate or quarantined. Among the rows
    that passed validation, the first arrival of an `event_id` (by file, then line) wins; a
    later copy with the same payload is a duplicate, a later copy with another payload is an
    `idempotency_conflict`. The conservation of raw rows is tested on this model.
#}
with

parsed_events as (

    select * from {{ ref('stg_events__parsed_events') }}

),

ranked_by_arrival as (

    select
        *,
        {# Invalid rows never claim an event_id: a broken first copy must not block a good one. #}
        row_number() over arrival as arrival_rank,
        first_value(payload_hash) over arrival as first_payload_hash,
        first_value(file_name) over arrival as first_file_name,
        first_value(line_number) over arrival as first_line_number
    from parsed_events
    window arrival as (
        partition by event_id, quarantine_reason is null
        order by file_id, line_number
    )

),

routed as (

    select
        ---------- ids
        raw_row_id,
        file_id,
        file_name,
        line_number,
        event_id,
        customer_id,
        event_type,
        reverses_event_id,
        ---------- routing
        case
            when quarantine_reason is not null then 'quarantined'
            when arrival_rank = 1 then 'accepted'
            when payload_hash = first_payload_hash then 'duplicate'
            else 'quarantined'
        end as event_status,
        case
            when quarantine_reason is not null then quarantine_reason
            when arrival_rank > 1 and payload_hash != first_payload_hash
                then 'idempotency_conflict'
        end as quarantine_reason,
        case when arrival_rank > 1 then first_file_name end as first_arrival_file_name,
        case when arrival_rank > 1 then first_line_number end as first_arrival_line_number,
        ---------- payload
        raw_line,
        properties,
        ---------- timestamps
        event_at,
        event_date,
        loaded_at
    from ranked_by_arrival

)

select * from routed
