{#
    One row per landed file with what became of its rows. accepted + duplicate + quarantined
    + withdrawn always equals raw_row_count (tested on every build), so a file can be traced
    from arrival to invoice. A withdrawn file (`billing withdraw`) keeps its row and its raw
    rows; they are counted as withdrawn (DECISIONLOG D38).
#}
with

landed_files as (

    select * from {{ source('raw', 'landed_files') }}

),

withdrawn_files as (

    select * from {{ source('raw', 'withdrawn_files') }}

),

routed_events as (

    select * from {{ ref('stg_events__routed_events') }}

),

routing_per_file as (

    select
        file_id,
        count(*) as routed_row_count,
        count(*) filter (where event_status = 'accepted') as accepted_count,
        count(*) filter (where event_status = 'duplicate') as duplicate_count,
        count(*) filter (where event_status = 'quarantined') as quarantined_count,
        count(*) filter (where event_status = 'withdrawn') as withdrawn_count
    from routed_events
    group by file_id

),

files_with_counts as (

    select
        ---------- ids
        landed_files.file_id,
        landed_files.file_name,
        landed_files.content_hash,
        landed_files.file_format,
        ---------- attributes
        coalesce(landed_files.normalizations, '') as normalizations,
        withdrawn_files.file_id is not null as is_withdrawn,
        withdrawn_files.reason as withdrawal_reason,
        ---------- numerics
        landed_files.byte_size,
        landed_files.raw_row_count,
        coalesce(routing_per_file.routed_row_count, 0) as routed_row_count,
        coalesce(routing_per_file.accepted_count, 0) as accepted_count,
        coalesce(routing_per_file.duplicate_count, 0) as duplicate_count,
        coalesce(routing_per_file.quarantined_count, 0) as quarantined_count,
        coalesce(routing_per_file.withdrawn_count, 0) as withdrawn_count,
        ---------- timestamps
        landed_files.loaded_at,
        withdrawn_files.withdrawn_at
    from landed_files
    left join routing_per_file
        on landed_files.file_id = routing_per_file.file_id
    left join withdrawn_files
        on landed_files.file_id = withdrawn_files.file_id

)

select * from files_with_counts
