{#
    Producers' control totals (architecture §3): what each producer says it sent, per UTC report
    date x customer x event type. Every landed row is kept with a status: `accepted`, the
    count reconciliation compares against; `superseded`, when a later control file reports
    the same key again (a producer's correction replaces its earlier count); `quarantined`,
    with a reason, when the row cannot be read. Rows of one file for the same key add up.
#}
with

raw_control_totals as (

    select * from {{ source('raw', 'raw_control_totals') }}

),

fields_extracted as (

    select
        file_id,
        file_name,
        line_number,
        raw_line,
        loaded_at,
        try(json(raw_line)) as parsed_line
    from raw_control_totals

),

fields_typed as (

    select
        *,
        nullif(trim(json_extract_string(parsed_line, '$.report_date')), '') as report_date_text,
        nullif(trim(json_extract_string(parsed_line, '$.customer_id')), '') as customer_id,
        nullif(trim(json_extract_string(parsed_line, '$.event_type')), '') as event_type,
        nullif(trim(json_extract_string(parsed_line, '$.event_count')), '') as event_count_text
    from fields_extracted

),

validated as (

    select
        ---------- ids
        file_id || ':' || line_number as control_row_id,
        file_id,
        file_name,
        line_number,
        customer_id,
        event_type,
        ---------- validation
        case
            when parsed_line is null or json_type(parsed_line) != 'OBJECT' then 'malformed_row'
            when report_date_text is null then 'missing_report_date'
            when customer_id is null then 'missing_customer_id'
            when event_type is null then 'missing_event_type'
            when event_count_text is null then 'missing_event_count'
            when try_strptime(report_date_text, '%Y-%m-%d') is null then 'invalid_report_date'
            when
                not regexp_full_match(event_count_text, '[0-9]{1,18}')
                then 'invalid_event_count'
        end as quarantine_reason,
        ---------- numerics
        try_cast(event_count_text as bigint) as reported_count,
        ---------- payload
        raw_line,
        ---------- timestamps
        cast(try_strptime(report_date_text, '%Y-%m-%d') as date) as report_date,
        loaded_at
    from fields_typed

),

latest_file_per_key as (

    select
        report_date,
        customer_id,
        event_type,
        max(file_id) as latest_file_id
    from validated
    where quarantine_reason is null
    group by report_date, customer_id, event_type

),

control_totals as (

    select
        validated.control_row_id,
        validated.file_id,
        validated.file_name,
        validated.line_number,
        validated.customer_id,
        validated.event_type,
        case
            when validated.quarantine_reason is not null then 'quarantined'
            when validated.file_id < latest_file_per_key.latest_file_id then 'superseded'
            else 'accepted'
        end as control_status,
        validated.quarantine_reason,
        validated.reported_count,
        validated.raw_line,
        validated.report_date,
        validated.loaded_at
    from validated
    left join latest_file_per_key
        on
            validated.report_date = latest_file_per_key.report_date
            and validated.customer_id = latest_file_per_key.customer_id
            and validated.event_type = latest_file_per_key.event_type

)

select * from control_totals
