{#
    The one place money is rounded: half away from zero to the currency's minor units
    (currencies.csv), as DESIGN 6.4 requires. Every line amount and the invoice tax go
    through here; invoice totals are sums of already-rounded amounts. The result is always
    decimal(38, 4), enough for every ISO 4217 currency (at most 4 minor units).
#}
{% macro round_money(amount, minor_units) -%}
    {#- Each branch is cast on its own: a CASE over decimals of different scales would
        otherwise take the first branch's scale and drop the cents. #}
    (case {{ minor_units }}
        {%- for units in range(0, 5) %}
        when {{ units }} then cast(round({{ amount }}, {{ units }}) as decimal(38, 4))
        {%- endfor %}
    end)
{%- endmacro %}
