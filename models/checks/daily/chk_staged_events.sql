{#
    Every staged row with what the `staged_events` gate asserts about it, per reconciliation
    day (the event's UTC day, else the day its file was loaded): accepted rows have an id, a
    customer and a timestamp, no id is accepted twice (counted over every row, so a build's
    gate can read only the rows it routed, DECISIONLOG D59), no accepted event lies more than
    `future_tolerance_minutes` after its file was loaded, and a landed file of at least
    `quarantine_share_min_rows` lines keeps its quarantined share under the limit. The share
    is set on a file's quarantined lines only, so the rule fails exactly the lines that were
    quarantined (never the file's good lines), and the file's totals and reasons ride along
    for the report.
#}
with

routed as (
    select
        *,
        coalesce(event_date, cast(loaded_at as date)) as reconciliation_date
    from {{ ref('stg_events__routed_events').include(database=False) }}
),

rows_per_file as (
    {#- Counted per file and joined, not a window over the rows: a filter on the rows read
        (`routed_batch`, D59, D68) then reaches the table scan instead of waiting for a
        window over every routed row. #}
    select
        file_id,
        count(*) as file_rows,
        count(*) filter (where event_status = 'quarantined') as file_quarantined
    from {{ ref('stg_events__routed_events').include(database=False) }}
    group by file_id
),

reasons_per_file as (
    select
        file_id,
        quarantine_reason,
        count(*) as reason_rows
    from {{ ref('stg_events__routed_events').include(database=False) }}
    where event_status = 'quarantined'
    group by file_id, quarantine_reason
),

ids_accepted_twice as (
    select
        event_id,
        count(*) as accepted_copies
    from {{ ref('stg_events__routed_events').include(database=False) }}
    where event_status = 'accepted'
    group by event_id
    having count(*) > 1
),

file_reasons as (
    select
        file_id,
        string_agg(
            quarantine_reason || ' ' || reason_rows, ', '
            order by reason_rows desc, quarantine_reason asc
        ) as file_quarantine_reasons
    from reasons_per_file
    group by file_id
)

select
    routed.raw_row_id,
    routed.file_name,
    routed.line_number,
    routed.event_id,
    routed.customer_id,
    routed.event_status,
    routed.quarantine_reason,
    routed.event_at,
    routed.reconciliation_date,
    rows_per_file.file_rows,
    rows_per_file.file_quarantined,
    file_reasons.file_quarantine_reasons,
    case when routed.event_status = 'accepted' then routed.event_id end as accepted_event_id,
    case
        when routed.event_status = 'accepted' then coalesce(ids_accepted_twice.accepted_copies, 1)
    end as accepted_copies,
    routed.routed_batch,
    date_diff('day', routed.reconciliation_date, cast(routed.event_at as date))
        as counted_offset_days,
    date_diff('minute', routed.loaded_at, routed.event_at)
    - {{ var('future_tolerance_minutes') }} as minutes_after_load,
    case
        when
            routed.event_status = 'quarantined'
            and rows_per_file.file_rows >= {{ var('quarantine_share_min_rows') }}
            then rows_per_file.file_quarantined / rows_per_file.file_rows
    end as file_quarantine_share
from routed
inner join rows_per_file on routed.file_id = rows_per_file.file_id
left join file_reasons on routed.file_id = file_reasons.file_id
left join ids_accepted_twice
    on
        routed.event_status = 'accepted'
        and routed.event_id = ids_accepted_twice.event_id
