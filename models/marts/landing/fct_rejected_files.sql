{#
    The files ingest could not land, for producers and on call: name, hash, reason, and
    whether a fixed resend has landed since. The sibling of fct_landed_files; nothing of a
    rejected file is in raw_events (DECISIONLOG D36).
#}
with

rejected_files as (

    select * from {{ ref('stg_events__rejected_files') }}

),

rejections as (

    select
        ---------- ids
        rejection_id,
        file_name,
        content_hash,
        file_format,
        resolved_by_file_id,
        ---------- attributes
        reason,
        is_resolved,
        ---------- numerics
        byte_size,
        ---------- timestamps
        rejected_at
    from rejected_files

)

select * from rejections
