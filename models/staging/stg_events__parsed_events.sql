{#
    Every raw row parsed and validated on its own: typed fields, the timestamp in UTC, and
    the first rule the row breaks (its quarantine reason), or none. One row per raw row.
    Only row-local work happens here (dedupe is the next model), so this model can become
    incremental by `file_id` without a rewrite.
#}
with

raw_events as (

    select * from {{ source('raw', 'raw_events') }}

),

customers as (

    select * from {{ ref('customers') }}

),

meters as (

    select * from {{ ref('meters') }}

),

event_types as (

    select distinct event_type from meters

),

json_checked as (

    select
        *,
        {# json_type() raises on invalid JSON, so it only sees rows json_valid() passed. #}
        case
            when has_encoding_error then false
            when not coalesce(json_valid(raw_line), false) then false
            else json_type(raw_line) = 'OBJECT'
        end as is_json_object
    from raw_events

),

fields_extracted as (

    select
        ---------- ids
        file_id,
        file_name,
        line_number,
        nullif(top_level_fields[1], '') as event_id,
        nullif(top_level_fields[2], '') as customer_id,
        nullif(top_level_fields[3], '') as event_type,
        nullif(top_level_fields[4], '') as reverses_event_id,
        ---------- payload
        raw_line,
        has_encoding_error,
        is_json_object,
        nullif(top_level_fields[5], '') as timestamp_text,
        properties_raw,
        ---------- timestamps
        loaded_at
    from (
        select
            *,
            {# One parse for the five top-level fields (a list path), not one per field. #}
            case
                when is_json_object
                    then
                        json_extract_string(
                            raw_line,
                            [
                                '$.event_id',
                                '$.customer_id',
                                '$.event_type',
                                '$.reverses_event_id',
                                '$.timestamp'
                            ]
                        )
            end as top_level_fields,
            case when is_json_object then raw_line -> '$.properties' end as properties_raw
        from json_checked
    ) as json_lines

),

fields_typed as (

    select
        *,
        {# Parquet producers send `properties` as a JSON string; JSON Lines ones as an object. #}
        case
            when properties_raw is null or json_type(properties_raw) = 'NULL'
                then json('{}')
            when
                json_type(properties_raw) = 'VARCHAR'
                and coalesce(json_valid(properties_raw ->> '$'), false)
                then json(properties_raw ->> '$')
            else properties_raw
        end as properties,
        {# RFC 3339 demands an explicit offset; a bare local time is ambiguous, so invalid. #}
        case
            when
                regexp_full_match(
                    timestamp_text,
                    '\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d{1,6})?([Zz]|[+-]\d{2}:\d{2})'
                )
                then timezone('UTC', try_cast(timestamp_text as timestamptz))
        end as event_at
    from fields_extracted

),

value_checks as (

    {# One row per event and meter that reads a value from it: the value must be there, and
       numeric unless the meter counts distinct values. A reversal's properties are ignored
       (DESIGN 6.5), so reversals are not checked. #}
    select
        fields_typed.file_id,
        fields_typed.line_number,
        bool_or(
            json_extract_string(
                fields_typed.properties, '$."' || meters.value_property || '"'
            ) is null
        ) as is_missing_value,
        bool_or(
            meters.aggregation != 'unique_count'
            and try_cast(
                json_extract_string(
                    fields_typed.properties, '$."' || meters.value_property || '"'
                ) as decimal(38, 9)
            ) is null
        ) as is_non_numeric_value
    from fields_typed
    inner join meters
        on fields_typed.event_type = meters.event_type
    where
        meters.value_property is not null
        and fields_typed.reverses_event_id is null
        and fields_typed.is_json_object
        and json_type(fields_typed.properties) = 'OBJECT'
    group by fields_typed.file_id, fields_typed.line_number

),

validated as (

    select
        fields_typed.*,
        case
            when fields_typed.has_encoding_error then 'invalid_encoding'
            when not fields_typed.is_json_object then 'malformed_json'
            when fields_typed.event_id is null then 'missing_event_id'
            when fields_typed.customer_id is null then 'missing_customer_id'
            when fields_typed.event_type is null then 'missing_event_type'
            when fields_typed.timestamp_text is null then 'missing_timestamp'
            when fields_typed.event_at is null then 'invalid_timestamp'
            when
                fields_typed.event_at > {{ as_of_timestamp() }}
                + to_minutes(cast({{ var('future_tolerance_minutes') }} as bigint))
                then 'future_timestamp'
            when customers.customer_id is null then 'unknown_customer'
            when event_types.event_type is null then 'unknown_event_type'
            when json_type(fields_typed.properties) != 'OBJECT' then 'invalid_properties'
            when value_checks.is_missing_value then 'missing_value'
            when value_checks.is_non_numeric_value then 'non_numeric_value'
        end as quarantine_reason
    from fields_typed
    left join customers
        on fields_typed.customer_id = customers.customer_id
    left join event_types
        on fields_typed.event_type = event_types.event_type
    left join value_checks
        on
            fields_typed.file_id = value_checks.file_id
            and fields_typed.line_number = value_checks.line_number

),

final as (

    select
        ---------- ids
        file_id || ':' || line_number as raw_row_id,
        file_id,
        file_name,
        line_number,
        event_id,
        customer_id,
        event_type,
        reverses_event_id,
        ---------- payload
        raw_line,
        timestamp_text,
        properties,
        {# What "the same event" means for dedupe: every field, normalized, except the id. #}
        md5(
            json_array(customer_id, event_type, event_at, properties, reverses_event_id)::varchar
        ) as payload_hash,
        quarantine_reason,
        ---------- timestamps
        event_at,
        event_at::date as event_date,
        loaded_at
    from validated

)

select * from final
