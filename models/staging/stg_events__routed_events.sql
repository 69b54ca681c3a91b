{#
    Every raw row routed to exactly one of accepted, duplicate, quarantined or withdrawn.
    Rows of a file withdrawn with `billing withdraw` are `withdrawn` and take no further part
    (DECISIONLOG D38). Among the other rows that passed validation, the first arrival of an
    `event_id` (by file, then line) wins; a later copy with the same payload is a duplicate,
    a later copy with another payload is an `idempotency_conflict`. Then reversals
    (architecture §6.5) are checked against the accepted usage events: a reversal of an unknown
    event, of an event already reversed, or of another customer's or event type's event is
    quarantined. The conservation of raw rows is tested on this model.
#}
with

parsed_events as (

    select * from {{ ref('stg_events__parsed_events') }}

),

withdrawn_files as (

    select * from {{ source('raw', 'withdrawn_files') }}

),

events_with_withdrawals as (

    select
        parsed_events.*,
        withdrawn_files.file_id is not null as is_withdrawn,
        {# Only valid rows of files still standing claim an event_id: a broken or withdrawn
           first copy must not block a good resend. #}
        parsed_events.quarantine_reason is null
        and withdrawn_files.file_id is null as claims_event_id
    from parsed_events
    left join withdrawn_files
        on parsed_events.file_id = withdrawn_files.file_id

),

ranked_by_arrival as (

    select
        *,
        row_number() over arrival as arrival_rank,
        first_value(payload_hash) over arrival as first_payload_hash,
        first_value(file_name) over arrival as first_file_name,
        first_value(line_number) over arrival as first_line_number
    from events_with_withdrawals
    window arrival as (
        partition by event_id, claims_event_id
        order by file_id, line_number
    )

),

deduplicated as (

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
            when is_withdrawn then 'withdrawn'
            when quarantine_reason is not null then 'quarantined'
            when arrival_rank = 1 then 'accepted'
            when payload_hash = first_payload_hash then 'duplicate'
            else 'quarantined'
        end as event_status,
        case
            when is_withdrawn then null
            when quarantine_reason is not null then quarantine_reason
            when arrival_rank > 1 and payload_hash != first_payload_hash
                then 'idempotency_conflict'
        end as quarantine_reason,
        case
            when not is_withdrawn and arrival_rank > 1 then first_file_name
        end as first_arrival_file_name,
        case
            when not is_withdrawn and arrival_rank > 1 then first_line_number
        end as first_arrival_line_number,
        ---------- payload
        raw_line,
        properties,
        meter_readings,
        ---------- timestamps
        event_at,
        event_date,
        loaded_at
    from ranked_by_arrival

),

accepted_usage as (

    select
        event_id,
        customer_id,
        event_type
    from deduplicated
    where event_status = 'accepted' and reverses_event_id is null

),

reversals_matched as (

    select
        deduplicated.raw_row_id,
        deduplicated.reverses_event_id,
        deduplicated.file_id,
        deduplicated.line_number,
        case
            when accepted_usage.event_id is null then 'reversal_of_unknown_event'
            when
                accepted_usage.customer_id != deduplicated.customer_id
                or accepted_usage.event_type != deduplicated.event_type
                then 'reversal_mismatch'
        end as match_problem
    from deduplicated
    left join accepted_usage
        on deduplicated.reverses_event_id = accepted_usage.event_id
    where deduplicated.event_status = 'accepted' and deduplicated.reverses_event_id is not null

),

reversals_checked as (

    select
        raw_row_id,
        {# The first valid reversal of an event wins; any later one is refused. #}
        case
            when match_problem is not null then match_problem
            when
                row_number() over (
                    partition by reverses_event_id, match_problem is null
                    order by file_id, line_number
                ) > 1
                then 'reversal_of_reversed_event'
        end as reversal_problem
    from reversals_matched

),

routed as (

    select
        ---------- ids
        deduplicated.raw_row_id,
        deduplicated.file_id,
        deduplicated.file_name,
        deduplicated.line_number,
        deduplicated.event_id,
        deduplicated.customer_id,
        deduplicated.event_type,
        deduplicated.reverses_event_id,
        ---------- routing
        case
            when reversals_checked.reversal_problem is not null then 'quarantined'
            else deduplicated.event_status
        end as event_status,
        coalesce(deduplicated.quarantine_reason, reversals_checked.reversal_problem)
            as quarantine_reason,
        deduplicated.first_arrival_file_name,
        deduplicated.first_arrival_line_number,
        ---------- payload
        deduplicated.raw_line,
        deduplicated.properties,
        deduplicated.meter_readings,
        ---------- timestamps
        deduplicated.event_at,
        deduplicated.event_date,
        deduplicated.loaded_at
    from deduplicated
    left join reversals_checked
        on deduplicated.raw_row_id = reversals_checked.raw_row_id

)

select * from routed
