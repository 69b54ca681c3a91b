{#
    Event conservation: per landed file and in total, raw rows = accepted + duplicate +
    quarantined + withdrawn, and the rows ingest counted = the rows in raw = the rows
    routed. Any row lost or doubled anywhere between landing and routing fails the build.
    A withdrawn file's rows are all withdrawn, and no other file's row is.
#}
{# Orchestration shows this test as a check on the model it is about. #}
{{ config(meta={'dagster': {'ref': {'name': 'stg_events__routed_events'}}}) }}

with

raw_events as (

    select * from {{ source('raw', 'raw_events') }}

),

landed_files as (

    select * from {{ source('raw', 'landed_files') }}

),

withdrawn_files as (

    select * from {{ source('raw', 'withdrawn_files') }}

),

routed_events as (

    select * from {{ ref('stg_events__routed_events') }}

),

raw_per_file as (

    select
        file_id,
        count(*) as raw_row_count
    from raw_events
    group by file_id

),

routed_per_file as (

    select
        file_id,
        count(distinct raw_row_id) as distinct_routed_rows,
        count(*) as routed_row_count,
        count(*) filter (where event_status = 'accepted') as accepted_count,
        count(*) filter (where event_status = 'duplicate') as duplicate_count,
        count(*) filter (where event_status = 'quarantined') as quarantined_count,
        count(*) filter (where event_status = 'withdrawn') as withdrawn_count
    from routed_events
    group by file_id

),

per_file as (

    select
        coalesce(landed_files.file_id, raw_per_file.file_id, routed_per_file.file_id)
            as file_id,
        coalesce(landed_files.raw_row_count, 0) as counted_at_ingest,
        coalesce(raw_per_file.raw_row_count, 0) as raw_row_count,
        coalesce(routed_per_file.routed_row_count, 0) as routed_row_count,
        coalesce(routed_per_file.distinct_routed_rows, 0) as distinct_routed_rows,
        coalesce(routed_per_file.accepted_count, 0)
        + coalesce(routed_per_file.duplicate_count, 0)
        + coalesce(routed_per_file.quarantined_count, 0)
        + coalesce(routed_per_file.withdrawn_count, 0) as routed_outcome_count,
        {# A withdrawn file's rows are all withdrawn; no other file's row is. #}
        coalesce(routed_per_file.withdrawn_count, 0) != case
            when withdrawn_files.file_id is not null
                then coalesce(routed_per_file.routed_row_count, 0)
            else 0
        end as is_withdrawal_misrouted
    from landed_files
    full outer join raw_per_file
        on landed_files.file_id = raw_per_file.file_id
    full outer join routed_per_file
        on coalesce(landed_files.file_id, raw_per_file.file_id) = routed_per_file.file_id
    left join withdrawn_files
        on
            coalesce(landed_files.file_id, raw_per_file.file_id, routed_per_file.file_id)
            = withdrawn_files.file_id

),

totals as (

    select
        null as file_id,
        sum(counted_at_ingest) as counted_at_ingest,
        sum(raw_row_count) as raw_row_count,
        sum(routed_row_count) as routed_row_count,
        sum(distinct_routed_rows) as distinct_routed_rows,
        sum(routed_outcome_count) as routed_outcome_count,
        false as is_withdrawal_misrouted
    from per_file

),

all_checks as (

    select * from per_file
    union all
    select * from totals

)

select *
from all_checks
where
    counted_at_ingest != raw_row_count
    or raw_row_count != routed_row_count
    or routed_row_count != distinct_routed_rows
    or routed_row_count != routed_outcome_count
    or is_withdrawal_misrouted
