{#
    Every raw row routed to exactly one of accepted, duplicate, quarantined or withdrawn.
    Rows of a file withdrawn with `billing withdraw` are `withdrawn` and take no further part
    (DECISIONLOG D38). Among the other rows that passed validation, the first arrival of an
    `event_id` (by file, then line) wins; a later copy with the same payload is a duplicate,
    a later copy with another payload is an `idempotency_conflict`. Then reversals
    (architecture §6.5) are checked against the accepted usage events: a reversal of an unknown
    event, of an event already reversed, or of another customer's or event type's event is
    quarantined. The conservation of raw rows is tested on this model.

    Incremental (DECISIONLOG D58): a build routes again only the event ids whose rows
    changed (parsed in a batch routing has not seen, or in a file withdrawn since), every
    row of those ids, and the reversals of the events they touch, against the stored
    routing of the rest. Each row keeps its routing before the reversal check
    (`dedupe_status`), which is what the reversal check of a later batch reads.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='raw_row_id',
    on_schema_change='fail'
) }}

{%- set parsed_up_to = incremental_watermark('parsed_through_batch') -%}
{%- set routed_batch = next_batch_number('routed_batch') %}

with

withdrawn_files as (

    select * from {{ source('raw', 'withdrawn_files') }}

),
{%- if parsed_up_to is not none %}

routed_before as (

    select * from {{ this }}

),

rows_changed as (

    {# Rows parsed (or parsed again) since routing last ran, and rows of files whose
       withdrawal changed since. #}
    select
        raw_row_id,
        event_id
    from {{ ref('stg_events__parsed_events') }}
    where parse_batch > {{ parsed_up_to }}
    union all
    select
        raw_row_id,
        event_id
    from routed_before
    where
        routed_before.is_withdrawn
        != (routed_before.file_id in (select withdrawn_files.file_id from withdrawn_files))

),

event_ids_changed as (

    select distinct event_id
    from rows_changed
    where event_id is not null

),
{%- endif %}

parsed_events as (

    {# Every row of a changed event id, so its dedupe sees all its copies; a row without
       an id claims nothing and is routed alone. #}
    select * from {{ ref('stg_events__parsed_events') }}
    {%- if parsed_up_to is not none %}
        where
            event_id in (select event_ids_changed.event_id from event_ids_changed)
            or (
                event_id is null
                and raw_row_id in (
                    select rows_changed.raw_row_id from rows_changed
                    where rows_changed.event_id is null
                )
            )
    {%- endif %}

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
        ---------- routing before the reversal check
        is_withdrawn,
        case
            when is_withdrawn then 'withdrawn'
            when quarantine_reason is not null then 'quarantined'
            when arrival_rank = 1 then 'accepted'
            when payload_hash = first_payload_hash then 'duplicate'
            else 'quarantined'
        end as dedupe_status,
        case
            when is_withdrawn then null
            when quarantine_reason is not null then quarantine_reason
            when arrival_rank > 1 and payload_hash != first_payload_hash
                then 'idempotency_conflict'
        end as dedupe_quarantine_reason,
        {# Rows without an id are not copies of one another. #}
        case
            when not is_withdrawn and event_id is not null and arrival_rank > 1
                then first_file_name
        end as first_arrival_file_name,
        case
            when not is_withdrawn and event_id is not null and arrival_rank > 1
                then first_line_number
        end as first_arrival_line_number,
        ---------- payload
        meter_readings,
        ---------- timestamps
        event_at,
        event_date,
        loaded_at
    from ranked_by_arrival

),
{%- if parsed_up_to is not none %}

events_to_check_reversals_of as (

    {# A reversal's verdict changes only when its own copies, the event it reverses or
       another reversal of that event changed. #}
    select event_id from event_ids_changed
    union
    select reverses_event_id from deduplicated
    where reverses_event_id is not null

),

rows_to_route as (

    {# This build's dedupe, and the stored dedupe of the rows the reversal check reads:
       the usage copies of the events to check and every reversal of them. A stored
       reversal whose own id is such an event is read only as a reversal: its own target
       is not among these events. #}
    select * from deduplicated
    union all
    select
        routed_before.raw_row_id,
        routed_before.file_id,
        routed_before.file_name,
        routed_before.line_number,
        routed_before.event_id,
        routed_before.customer_id,
        routed_before.event_type,
        routed_before.reverses_event_id,
        routed_before.is_withdrawn,
        routed_before.dedupe_status,
        routed_before.dedupe_quarantine_reason,
        routed_before.first_arrival_file_name,
        routed_before.first_arrival_line_number,
        routed_before.meter_readings,
        routed_before.event_at,
        routed_before.event_date,
        routed_before.loaded_at
    from routed_before
    where
        (
            (
                routed_before.reverses_event_id is null
                and routed_before.event_id in (
                    select events_to_check_reversals_of.event_id
                    from events_to_check_reversals_of
                )
            )
            or routed_before.reverses_event_id in (
                select events_to_check_reversals_of.event_id
                from events_to_check_reversals_of
            )
        )
        and routed_before.raw_row_id not in (select deduplicated.raw_row_id from deduplicated)

),
{%- else %}

rows_to_route as (

    select * from deduplicated

),
{%- endif %}

accepted_usage as (

    select
        event_id,
        customer_id,
        event_type
    from rows_to_route
    where dedupe_status = 'accepted' and reverses_event_id is null

),

reversals_matched as (

    select
        rows_to_route.raw_row_id,
        rows_to_route.reverses_event_id,
        rows_to_route.file_id,
        rows_to_route.line_number,
        case
            when accepted_usage.event_id is null then 'reversal_of_unknown_event'
            when
                accepted_usage.customer_id != rows_to_route.customer_id
                or accepted_usage.event_type != rows_to_route.event_type
                then 'reversal_mismatch'
        end as match_problem
    from rows_to_route
    left join accepted_usage
        on rows_to_route.reverses_event_id = accepted_usage.event_id
    where rows_to_route.dedupe_status = 'accepted' and rows_to_route.reverses_event_id is not null

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
        rows_to_route.raw_row_id,
        rows_to_route.file_id,
        rows_to_route.file_name,
        rows_to_route.line_number,
        rows_to_route.event_id,
        rows_to_route.customer_id,
        rows_to_route.event_type,
        rows_to_route.reverses_event_id,
        ---------- routing
        case
            when reversals_checked.reversal_problem is not null then 'quarantined'
            else rows_to_route.dedupe_status
        end as event_status,
        coalesce(rows_to_route.dedupe_quarantine_reason, reversals_checked.reversal_problem)
            as quarantine_reason,
        rows_to_route.first_arrival_file_name,
        rows_to_route.first_arrival_line_number,
        rows_to_route.is_withdrawn,
        rows_to_route.dedupe_status,
        rows_to_route.dedupe_quarantine_reason,
        ---------- payload
        rows_to_route.meter_readings,
        ---------- batches (DECISIONLOG D58)
        (
            select coalesce(max(parse_batch), 0)
            from {{ ref('stg_events__parsed_events') }}
        ) as parsed_through_batch,
        cast({{ routed_batch }} as bigint) as routed_batch,
        ---------- timestamps
        rows_to_route.event_at,
        rows_to_route.event_date,
        rows_to_route.loaded_at
    from rows_to_route
    left join reversals_checked
        on rows_to_route.raw_row_id = reversals_checked.raw_row_id

)

select * from routed
