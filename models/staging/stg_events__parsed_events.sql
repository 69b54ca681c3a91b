{#
    Every raw row parsed and validated on its own: typed fields, the timestamp in UTC, and
    the first rule the row breaks (its quarantine reason), or none. One row per raw row.
    Only row-local work happens here (dedupe is the next model). Numbers reach the values
    exactly as written, never rounded by a double (DECISIONLOG D39).

    Incremental (DECISIONLOG D57): a line is parsed once, when its file first arrives. A
    row's reason also depends on three things outside its line: `as_of` (future_timestamp),
    the customers seed (unknown_customer) and the meters of its event type
    (unknown_event_type, the value checks and the readings metering takes). Each row keeps
    what it was judged against (`customer_was_known`, `meter_rules_hash`), and a row that
    would now be judged differently is parsed again, alone, so the table always equals a
    full refresh. Each row carries the batch of the build that parsed it (`parse_batch`),
    so routing takes only what changed (DECISIONLOG D58).
#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='raw_row_id',
    on_schema_change='fail'
) }}

{%- set future_cutoff = as_of_timestamp() ~ ' + to_minutes(cast('
    ~ var('future_tolerance_minutes') ~ ' as bigint))' -%}

{%- set last_parsed_file_id = incremental_watermark('file_id') -%}
{%- set parse_batch = next_batch_number('parse_batch') %}

with

customers as (

    select * from {{ ref('customers') }}

),

meters as (

    select * from {{ ref('meters') }}

),

meter_rules as (

    {{ meter_rules_by_event_type() }}

),

meters_by_event_type as (

    {# The meters of each event type as one list, in meter order: what each row reads. #}
    select
        event_type,
        {{ collect_structs(
            ['meter_id', 'aggregation', 'group_by_property', 'value_property'], 'meter_id'
        ) }} as meters_of_type
    from meters
    group by event_type

),

{%- if last_parsed_file_id is not none %}

rows_to_judge_again as (

    {# Rows parsed before that the run's as_of or the seeds would now judge or read
       differently. The seed columns are kept on every row, so a row with a parse problem
       is read again too when they change: the table stays equal to a full refresh. #}
    select
        parsed.file_id,
        parsed.line_number
    from {{ this }} as parsed
    left join customers
        on parsed.customer_id = customers.customer_id
    left join meter_rules
        on parsed.event_type = meter_rules.event_type
    where
        (
            parsed.parse_problem is null
            and coalesce(parsed.quarantine_reason = 'future_timestamp', false)
            != (parsed.event_at > {{ future_cutoff }})
        )
        or parsed.customer_was_known != (customers.customer_id is not null)
        or parsed.meter_rules_hash is distinct from meter_rules.rules_hash

),
{%- endif %}

raw_events as (

    select * from {{ source('raw', 'raw_events') }}
    {%- if last_parsed_file_id is not none %}
        {# New files arrive with ever larger ids (billing/landing.py lands one file per
           transaction); the literal lets DuckDB skip the row groups of older files. #}
        where file_id > {{ last_parsed_file_id }}
    union all
    select raw_events.*
    from {{ source('raw', 'raw_events') }} as raw_events
    inner join rows_to_judge_again
        on
            raw_events.file_id = rows_to_judge_again.file_id
            and raw_events.line_number = rows_to_judge_again.line_number
    {%- endif %}

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

exact_lines as (

    {# The line with its numbers made exact (json_numbers_as_text: a number a double cannot
       hold becomes a string of its text): fields and properties are read from it; JSON
       types and keys from the line as sent. #}
    select
        *,
        case when is_json_object then {{ json_numbers_as_text('raw_line') }} end as exact_line,
        coalesce(is_json_object and {{ needs_exact_numbers('raw_line') }}, false)
            as line_needs_exact_numbers,
        case when is_json_object then json_type(raw_line, '$.event_id') end as event_id_type,
        case when is_json_object then json_keys(raw_line) end as top_level_keys
    from json_checked

),

fields_extracted as (

    select
        ---------- ids
        file_id,
        file_name,
        line_number,
        {# A blank or all-whitespace id names no event: it is missing (DECISIONLOG D40). #}
        case
            when not regexp_full_match(top_level_fields[1], '\s*') then top_level_fields[1]
        end as event_id,
        nullif(top_level_fields[2], '') as customer_id,
        nullif(top_level_fields[3], '') as event_type,
        nullif(top_level_fields[4], '') as reverses_event_id,
        ---------- payload
        raw_line,
        has_encoding_error,
        is_json_object,
        nullif(top_level_fields[5], '') as timestamp_text,
        properties_raw,
        event_id_type,
        top_level_keys,
        line_needs_exact_numbers,
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
                            exact_line,
                            [
                                '$.event_id',
                                '$.customer_id',
                                '$.event_type',
                                '$.reverses_event_id',
                                '$.timestamp'
                            ]
                        )
            end as top_level_fields,
            case when is_json_object then exact_line -> '$.properties' end as properties_raw
        from exact_lines
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
                then json({{ json_numbers_as_text(
                    "properties_raw ->> '$'", 'line_needs_exact_numbers'
                ) }})
            else properties_raw
        end as properties,
        {# RFC 3339 demands an explicit offset; a bare local time is ambiguous, so invalid.
           Hours run 00-23 and offsets to +-23:59 (RFC 3339): DuckDB's cast would take hour
           24 and offsets like +99:59 and move the event by days (DECISIONLOG D40). #}
        case
            when
                regexp_full_match(
                    timestamp_text,
                    '\d{4}-\d{2}-\d{2}[Tt ]([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?'
                    || '([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)'
                )
                then timezone('UTC', try_cast(timestamp_text as timestamptz))
        end as event_at
    from fields_extracted

),

keys_checked as (

    {# Two values under one key are ambiguous (DuckDB reads the first, most parsers the
       last), so the event is quarantined, at the top level and inside `properties`. #}
    select
        *,
        coalesce(
            len(top_level_keys) != len(list_distinct(top_level_keys))
            or (
                json_type(properties) = 'OBJECT'
                and len(json_keys(properties)) != len(list_distinct(json_keys(properties)))
            ),
            false
        ) as has_duplicate_key
    from fields_typed

),

readings_read as (

    {# Each event's readings, one per meter of its type: the meter's dimension value and the
       value it reads, as exact text. A reversal's properties are ignored (architecture
       §6.5), so reversals are not read. Read row by row from the list of its type's meters
       (no join to meters and group back by line: that aggregate held every row's readings
       in memory and ran out of it at 6 M lines, DECISIONLOG D65). #}
    select
        keys_checked.*,
        case
            when
                keys_checked.reverses_event_id is null
                and keys_checked.is_json_object
                and json_type(keys_checked.properties) = 'OBJECT'
                then {{ transform_list(
                    'meters_by_event_type.meters_of_type',
                    'meter',
                    "{
                        'meter_id': meter.meter_id,
                        'reads_value': meter.value_property is not null,
                        'reads_number': meter.value_property is not null
                            and meter.aggregation != 'unique_count',
                        'dimension_value': case
                            when meter.group_by_property is not null
                                then json_extract_string(
                                    keys_checked.properties,
                                    '$.\"' || meter.group_by_property || '\"'
                                )
                        end,
                        'value_text': case
                            when meter.value_property is not null
                                then json_extract_string(
                                    keys_checked.properties,
                                    '$.\"' || meter.value_property || '\"'
                                )
                        end
                    }"
                ) }}
        end as readings
    from keys_checked
    left join meters_by_event_type
        on keys_checked.event_type = meters_by_event_type.event_type

),

value_checks as (

    {# The value must be there, and numeric unless the meter counts distinct values; a
       numeric value must lie in the supported range (|value| < 10^15: DECISIONLOG D39), so
       nothing downstream can overflow. One with more than 9 decimal places is read
       rounded to 9 (half away from zero), and flagged. The row keeps its readings
       (`meter_readings`), so metering never parses the JSON again (DECISIONLOG D57). #}
    select
        *,
        {{ any_in_list(
            'readings', 'reading', 'reading.reads_value and reading.value_text is null'
        ) }} as is_missing_value,
        {{ any_in_list(
            'readings', 'reading',
            'reading.reads_number and not ' ~ is_numeric_text('reading.value_text')
        ) }} as is_non_numeric_value,
        {{ any_in_list(
            'readings', 'reading',
            'reading.reads_number and ' ~ is_numeric_text('reading.value_text')
            ~ ' and not ' ~ is_in_supported_range('reading.value_text')
        ) }} as is_out_of_range_value,
        {{ any_in_list(
            'readings', 'reading',
            'reading.reads_number and ' ~ is_numeric_text('reading.value_text')
            ~ ' and ' ~ decimal_places_needed('reading.value_text') ~ ' > 9'
        ) }} as reads_rounded_value,
        {{ transform_list(
            'readings',
            'reading',
            "{
                'meter_id': reading.meter_id,
                'dimension_value': reading.dimension_value,
                'value_text': reading.value_text,
                'value_number': case when reading.reads_number then "
            ~ exact_decimal('reading.value_text') ~ " end
            }"
        ) }} as meter_readings
    from readings_read

),

parse_checked as (

    {# The rules a row breaks on its own text, whatever the run and the seeds. #}
    select
        *,
        case
            when has_encoding_error then 'invalid_encoding'
            when not is_json_object then 'malformed_json'
            when has_duplicate_key then 'duplicate_key'
            when event_id is null then 'missing_event_id'
            {# The contract's id is a string: 123 and "123" must not name one event. #}
            when event_id_type != 'VARCHAR' then 'invalid_event_id'
            when customer_id is null then 'missing_customer_id'
            when event_type is null then 'missing_event_type'
            when timestamp_text is null then 'missing_timestamp'
            when event_at is null then 'invalid_timestamp'
        end as parse_problem
    from value_checks

),

validated as (

    select
        parse_checked.*,
        customers.customer_id is not null as customer_was_known,
        meter_rules.rules_hash as meter_rules_hash,
        case
            when parse_checked.parse_problem is not null then parse_checked.parse_problem
            when parse_checked.event_at > {{ future_cutoff }} then 'future_timestamp'
            when customers.customer_id is null then 'unknown_customer'
            when meter_rules.event_type is null then 'unknown_event_type'
            when json_type(parse_checked.properties) != 'OBJECT' then 'invalid_properties'
            when parse_checked.is_missing_value then 'missing_value'
            when parse_checked.is_non_numeric_value then 'non_numeric_value'
            when parse_checked.is_out_of_range_value then 'value_out_of_range'
        end as quarantine_reason,
        coalesce(parse_checked.reads_rounded_value, false) as has_rounded_value
    from parse_checked
    left join customers
        on parse_checked.customer_id = customers.customer_id
    left join meter_rules
        on parse_checked.event_type = meter_rules.event_type

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
        has_rounded_value,
        meter_readings,
        ---------- what the row was judged against (the incremental rule above)
        parse_problem,
        customer_was_known,
        meter_rules_hash,
        {# Which build parsed the row: routing takes the rows of batches it has not seen. #}
        cast({{ parse_batch }} as bigint) as parse_batch,
        ---------- timestamps
        {{ as_of_timestamp() }} as parsed_as_of,
        event_at,
        event_at::date as event_date,
        loaded_at
    from validated

)

select * from final
