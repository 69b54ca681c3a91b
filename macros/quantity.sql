{#
    Exact decimal arithmetic for quantities. DuckDB divides decimals in floating point, and
    round() only takes a constant precision, so division and rounding are done on whole
    numbers of nano-units (10^-9, the scale every value is read at) in hugeint, where
    floor, ceiling and half-up are exact. Results come back as decimal(38, 9).
#}

{% macro to_nano_units(value) -%}
    cast(cast(({{ value }}) as decimal(38, 9)) * 1000000000 as hugeint)
{%- endmacro %}

{% macro power_of_ten(exponent) -%}
    {# 10^exponent as an exact hugeint, exponent >= 0 #}
    cast(rpad('1', cast({{ exponent }} as integer) + 1, '0') as hugeint)
{%- endmacro %}

{% macro floor_divide(numerator, denominator) -%}
    {# Floor division of hugeints, denominator > 0; `//` truncates toward zero. #}
    (case
        when ({{ numerator }}) >= 0 then ({{ numerator }}) // ({{ denominator }})
        else -((-({{ numerator }}) + ({{ denominator }}) - 1) // ({{ denominator }}))
    end)
{%- endmacro %}

{% macro divide_and_round(numerator, divisor, precision, rounding) -%}
    {#
        round(numerator / divisor, precision, rounding), exactly (architecture §6.2).
        rounding: 'up' (toward +inf), 'down' (toward -inf), 'half_up' (halves away from
        zero), 'none' (keep every decimal: 9 places, the scale values are read at).
        precision may be negative (-2 rounds to hundreds); blank means 0.
    #}
    {%- set rounding_mode = "coalesce(" ~ rounding ~ ", 'none')" -%}
    {%- set digits = "(case when " ~ rounding_mode ~ " = 'none' then 9 else coalesce(" ~ precision ~ ", 0) end)" -%}
    {%- set scaled_numerator = to_nano_units(numerator) ~ " * " ~ power_of_ten("greatest(" ~ digits ~ ", 0)") -%}
    {%- set scaled_divisor = to_nano_units("coalesce(" ~ divisor ~ ", 1)") ~ " * " ~ power_of_ten("greatest(-" ~ digits ~ ", 0)") -%}
    (cast(
        (case {{ rounding_mode }}
            when 'up' then -{{ floor_divide("-(" ~ scaled_numerator ~ ")", scaled_divisor) }}
            when 'down' then {{ floor_divide(scaled_numerator, scaled_divisor) }}
            else sign({{ scaled_numerator }}) * {{ floor_divide(
                "2 * abs(" ~ scaled_numerator ~ ") + " ~ scaled_divisor,
                "2 * (" ~ scaled_divisor ~ ")"
            ) }}
        end) * {{ power_of_ten("9 - " ~ digits) }}
        as decimal(38, 0)
    ) * 0.000000001)
{%- endmacro %}

{% macro transform_quantity(aggregate, divisor, precision, rounding) -%}
    {# The charge's quantity transform of architecture §6.2, applied to a meter's aggregate. #}
    {{ divide_and_round(aggregate, divisor, precision, rounding) }}
{%- endmacro %}
