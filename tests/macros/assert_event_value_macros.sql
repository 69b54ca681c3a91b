{# The exact-value macros over literal rows: a number's text survives, a double's would not. #}
with

cases as (

    select
        literal_rows.json_text::varchar as json_text,
        literal_rows.expected_value::varchar as expected_value,
        literal_rows.expected_numeric::boolean as expected_numeric,
        literal_rows.expected_in_range::boolean as expected_in_range,
        literal_rows.expected_places::integer as expected_places,
        literal_rows.expected_decimal::decimal(38, 9) as expected_decimal
    from (
        values
        (
            '{"a": 123456789.123456789, "s": "x\"9,1"}', '123456789.123456789', true, true, 9,
            '123456789.123456789'
        ),
        (
            '{"a": 12345678901234.56789}', '12345678901234.56789', true, true, 5,
            '12345678901234.56789'
        ),
        ('{"a": 1500, "b": [1, 2.5e-3]}', '1500', true, true, -2, '1500'),
        ('{"a": "1.5e3"}', '1.5e3', true, true, -2, '1500'),
        ('{"a": 1.50e1}', '15.0', true, true, 0, '15'),
        ('{"a": 1e400}', '1e400', true, false, -400, null),
        ('{"a": 0.0000000006}', '6e-10', true, true, 10, '0.000000001'),
        (
            '{"a": 100000000000000000000}', '100000000000000000000', true, false, -20,
            '100000000000000000000'
        ),
        ('{"a": "lots"}', 'lots', false, false, 0, null),
        ('{"a": true}', 'true', false, false, 0, null)
    ) as literal_rows (
        json_text, expected_value, expected_numeric, expected_in_range, expected_places,
        expected_decimal
    )

),

values_read as (

    select
        *,
        json_extract_string({{ json_numbers_as_text('json_text') }}, '$.a') as value_text
    from cases

),

checked as (

    select
        *,
        {{ is_numeric_text('value_text') }} as actual_numeric,
        {{ is_in_supported_range('value_text') }} as actual_in_range,
        {{ decimal_places_needed('value_text') }} as actual_places,
        {{ exact_decimal('value_text') }} as actual_decimal
    from values_read

)

select *
from checked
where
    value_text is distinct from expected_value
    or actual_numeric is distinct from expected_numeric
    or actual_in_range is distinct from expected_in_range
    or (expected_numeric and actual_places is distinct from expected_places)
    -- narrow or wide, the value read at decimal(38, 9): 6e-10 rounds up to 1e-9
    or actual_decimal is distinct from expected_decimal
