{#
    Every file ingest could not land (raw.rejected_files), with whether a file of the same
    name has landed since: a producer's fixed resend resolves its rejection, so on call sees
    which rejections still wait for one (DECISIONLOG D36).
#}
with

rejected_files as (

    select * from {{ source('raw', 'rejected_files') }}

),

landed_files as (

    select * from {{ source('raw', 'landed_files') }}

),

resends as (

    select
        rejected_files.rejection_id,
        min(landed_files.file_id) as resolved_by_file_id
    from rejected_files
    inner join landed_files
        on
            rejected_files.file_name = landed_files.file_name
            and rejected_files.rejected_at <= landed_files.loaded_at
            and rejected_files.content_hash is distinct from landed_files.content_hash
    group by rejected_files.rejection_id

),

rejections_resolved as (

    select
        ---------- ids
        rejected_files.rejection_id,
        rejected_files.file_name,
        rejected_files.content_hash,
        rejected_files.file_format,
        resends.resolved_by_file_id,
        ---------- attributes
        rejected_files.reason,
        resends.resolved_by_file_id is not null as is_resolved,
        ---------- numerics
        rejected_files.byte_size,
        ---------- timestamps
        rejected_files.rejected_at
    from rejected_files
    left join resends
        on rejected_files.rejection_id = resends.rejection_id

)

select * from rejections_resolved
