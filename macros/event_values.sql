{#
    Exact event values (DECISIONLOG D39). DuckDB's JSON functions read every number as a
    double, so 123456789.123456789 would reach billing as ...790. These macros keep such a
    number's text as the producer wrote it, and say whether a value's text is one billing
    supports.
#}

{#
    The JSON text with its numbers made exact: when the text holds a run of 16 or more digits
    (and points) or a three-digit exponent, every number in it becomes a string of its
    exact text, so json_extract_string returns the digits as sent. A number of at most 15
    significant digits and a smaller exponent survives the double exactly (DBL_DIG: DuckDB
    prints a double back as its shortest round-trip text), so other lines skip the rewrite,
    which costs about 10 s per million lines.
    The rewrite is one left-to-right scan matching either a whole string (kept) or a number
    outside strings (wrapped); chr(1) marks the wrapping, and it cannot occur in valid JSON
    (control characters must be escaped), so the two replaces that follow touch only the
    marks: a string leaves an empty pair behind (dropped), a number a pair around it
    (quotes). Only meaningful on valid JSON.
#}
{% macro needs_exact_numbers(json_text) -%}
    regexp_matches({{ json_text }}, '[0-9][0-9.]{15}|[eE][+-]?[0-9]{3}')
{%- endmacro %}

{#- `force`: a SQL condition that rewrites regardless (Parquet's properties string follows
    its line, so a JSON Lines copy and a Parquet copy of one event read the same values). #}
{% macro json_numbers_as_text(json_text, force='false') -%}
    case
        when {{ force }} or {{ needs_exact_numbers(json_text) }}
            then
                replace(
                    replace(
                        regexp_replace(
                            {{ json_text }},
                            '("(?:[^"\\]|\\.)*")|(-?[0-9][0-9.eE+-]*)',
                            '\1' || chr(1) || '\2' || chr(1),
                            'g'
                        ),
                        chr(1) || chr(1),
                        ''
                    ),
                    chr(1),
                    '"'
                )
        else {{ json_text }}
    end
{%- endmacro %}

{#
    A numeric text read at billing's scale, decimal(38, 9), or null when it is not one.
    DuckDB's cast from text to a decimal wider than 18 digits costs about 120x the cast to
    one of 18 or fewer (hugeint arithmetic per digit), so the text is read at decimal(18, 9)
    first and only a value that does not fit there (10^9 or more) takes the wide cast: the
    same scale rounds the same way, so the result is identical.
#}
{% macro exact_decimal(value_text) -%}
    coalesce(
        cast(try_cast({{ value_text }} as decimal(18, 9)) as decimal(38, 9)),
        try_cast({{ value_text }} as decimal(38, 9))
    )
{%- endmacro %}

{#
    The text reads as a number: DuckDB's decimal cast accepts it, or it has the shape of a
    decimal number too large for that cast (1e40), which is a number out of range, not text.
#}
{% macro is_numeric_text(value_text) -%}
    (
        {{ exact_decimal(value_text) }} is not null
        or regexp_full_match(
            {{ value_text }}, '\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*'
        )
    )
{%- endmacro %}

{#
    A numeric text inside the supported range: |value| < 10^15 once read at billing's scale,
    decimal(38, 9) (rounded half away from zero to 9 decimal places). Beyond it sums and
    prices could overflow, so such an event is quarantined before anything aggregates.
#}
{% macro is_in_supported_range(value_text) -%}
    coalesce(abs({{ exact_decimal(value_text) }}) < 1000000000000000, false)
{%- endmacro %}

{#
    The decimal places a numeric text needs, counted on its digits (never through a cast,
    which would round): fraction digits - exponent - trailing zeros of all the digits, so
    1.50e1 needs 0 and 1e-10 needs 10. More than 9 means reading it at decimal(38, 9)
    rounds it. An exponent too long to read counts as 0 (such a value is out of range).
#}
{% macro decimal_places_needed(value_text) -%}
    {%- set mantissa_digits -%}
        regexp_replace(regexp_extract({{ value_text }}, '^[^eE]*'), '[^0-9]', '', 'g')
    {%- endset -%}
    (
        length(replace(regexp_extract({{ value_text }}, '\.([0-9_]*)', 1), '_', ''))
        - coalesce(
            try_cast(
                nullif(regexp_extract({{ value_text }}, '[eE]([+-]?[0-9]+)', 1), '') as hugeint
            ),
            0
        )
        - (length({{ mantissa_digits }}) - length(rtrim({{ mantissa_digits }}, '0')))
    )
{%- endmacro %}

{#
    One row per event type some meter reads, with a hash of everything parsing its events
    takes from the meters (which meters, which properties they read, how). A row of
    stg_events__parsed_events keeps the hash it was judged and read against; when the
    meters change it, the row's file is parsed again (DECISIONLOG D57).
#}
{% macro meter_rules_by_event_type() -%}
    select
        event_type,
        {{ rows_fingerprint(
            ['meter_id', 'value_property', 'group_by_property', 'aggregation'], 'meter_id'
        ) }} as rules_hash
    from {{ ref('meters') }}
    group by event_type
{%- endmacro %}

{#
    Aggregate: one hash of the rows' `columns`, in `order_by` order. Each row is hashed as
    a JSON array, so no value can make two different sets of rows read the same (a comma
    inside a property name, a null against an empty text). Engine-specific, so behind
    adapter.dispatch.
#}
{% macro rows_fingerprint(columns, order_by) -%}
    {{ return(adapter.dispatch('rows_fingerprint', 'billing')(columns, order_by)) }}
{%- endmacro %}

{% macro default__rows_fingerprint(columns, order_by) -%}
    md5(
        string_agg(
            cast(json_array({{ columns | join(', ') }}) as varchar), ',' order by {{ order_by }}
        )
    )
{%- endmacro %}

{#
    One hash of everything int_events_priced reads from the seeds to match an event to its
    subscription and charge, and of what int_usage_aggregated_to_charges reads to rate a
    percentage charge event by event (its model, rate, fees, free allowance and per-event
    limits, D76). Other prices are applied later and are not in it. When it changes, every
    stored event is matched again and every period recounted (DECISIONLOG D61, D64).
#}
{% macro pricing_rules_hash() -%}
    select md5(
        coalesce((
            select {{ rows_fingerprint(
                [
                    'subscription_id', 'customer_id', 'plan_id', 'starts_on', 'ends_on',
                    'trial_days', 'trial_usage'
                ],
                'subscription_id'
            ) }}
            from {{ ref('subscriptions') }}
        ), '')
        || '|'
        || coalesce((
            select {{ rows_fingerprint(
                [
                    'charge_id', 'plan_id', 'meter_id', 'dimension_value', 'charge_model',
                    'rate_percent', 'fixed_fee_per_event', 'free_events', 'free_amount',
                    'min_fee_per_event', 'max_fee_per_event'
                ],
                'charge_id'
            ) }}
            from {{ ref('plan_charges') }}
        ), '')
    ) as pricing_rules_hash
{%- endmacro %}

{#
    One hash of the subscription periods that have an invoice (draft or finalized): which
    priced events reconciliation counts as billed. A new month changes it, and every
    reconciliation key is counted again (DECISIONLOG D63).
#}
{% macro subscription_periods_hash() -%}
    select md5(
        coalesce((
            select {{ rows_fingerprint(
                ['subscription_id', 'billing_period_start'],
                'subscription_id, billing_period_start'
            ) }}
            from {{ ref('int_subscriptions_prorated_to_periods') }}
        ), '')
    ) as subscription_periods_hash
{%- endmacro %}

{#
    Lists, engine by engine (behind adapter.dispatch): the rows of a group as one list of
    structs (`collect_structs`), a list mapped element by element (`transform_list`), and
    whether a condition holds for any element (`any_in_list`: null for a null list, and
    nulls ignored, as bool_or over rows). Each row's meter readings are such a list, read
    row by row (DECISIONLOG D65), and back to one row per reading with its fields as columns
    (`explode_meter_readings`).
#}
{% macro collect_structs(columns, order_by) -%}
    {{ return(adapter.dispatch('collect_structs', 'billing')(columns, order_by)) }}
{%- endmacro %}

{% macro default__collect_structs(columns, order_by) -%}
    list(
        {
            {%- for column in columns %}
            '{{ column }}': {{ column }}{{ ',' if not loop.last }}
            {%- endfor %}
        }
        order by {{ order_by }}
    )
{%- endmacro %}

{% macro transform_list(list, element, expression) -%}
    {{ return(adapter.dispatch('transform_list', 'billing')(list, element, expression)) }}
{%- endmacro %}

{% macro default__transform_list(list, element, expression) -%}
    list_transform({{ list }}, lambda {{ element }}: {{ expression }})
{%- endmacro %}

{% macro any_in_list(list, element, condition) -%}
    {{ return(adapter.dispatch('any_in_list', 'billing')(list, element, condition)) }}
{%- endmacro %}

{% macro default__any_in_list(list, element, condition) -%}
    list_aggregate({{ transform_list(list, element, condition) }}, 'bool_or')
{%- endmacro %}

{% macro explode_meter_readings(readings) -%}
    {{ return(adapter.dispatch('explode_meter_readings', 'billing')(readings)) }}
{%- endmacro %}

{% macro default__explode_meter_readings(readings) -%}
    unnest({{ readings }}, recursive := true)
{%- endmacro %}
