{#
    The one place money is rounded: half away from zero to the currency's minor units
    (currencies.csv), as architecture §6.4 requires. Every line amount and the invoice tax go
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

{#
    An amount as text with its currency's decimals (50.00, 1000 JPY), for line descriptions
    a customer reads on the invoice document; the amount is rounded to them (round_money)
    first, so the text never shows more or other digits than the line does.
#}
{% macro money_text(amount, minor_units) -%}
    (case {{ minor_units }}
        {%- for units in range(0, 5) %}
        when {{ units }} then cast(cast(round({{ amount }}, {{ units }}) as decimal(38, {{ units }})) as varchar)
        {%- endfor %}
    end)
{%- endmacro %}

{#
    The supported ranges (README "Supported ranges", DECISIONLOG D33). Inside them rating is
    exact and never overflows: quantities below 10^15 units with 9 decimals, unit prices
    below 10^9 with 9 decimals, price multipliers with 4 decimals, line amounts below 10^15.
    The types are chosen for them: a quantity x unit price product is decimal(38, 18) (DuckDB
    gives a product the scale of both factors and the width of the wider), and times a
    4-decimal multiplier decimal(38, 22), which holds 16 integer digits.
#}
{% macro max_quantity() -%}
    cast(1000000000000000 as decimal(38, 9))
{%- endmacro %}

{% macro max_unit_price() -%}
    cast(1000000000 as decimal(38, 9))
{%- endmacro %}

{% macro max_line_amount() -%}
    cast(1000000000000000 as decimal(38, 9))
{%- endmacro %}

{% macro apply_multiplier(amount, multiplier) -%}
    {#- An unrounded line amount times the subscription's price multiplier, exactly:
        decimal(38, 18) x decimal(18, 4) is decimal(38, 22), exact below 10^16. -#}
    (cast({{ amount }} as decimal(38, 18)) * cast({{ multiplier }} as decimal(18, 4)))
{%- endmacro %}

{% macro is_beyond_line_amount(quantity, unit_price, flat_fee='0', multiplier='1') -%}
    {#- Whether |q x price + flat_fee| could reach 10^15 before or after the multiplier,
        judged in double before the exact product is taken, so an out-of-range line is
        flagged instead of overflowing. Before, too: the exact q x price (scale 18) overflows
        at 10^20 whatever the multiplier, so a zero multiplier must not wave a huge product
        through (D33). The double only decides the flag; it never becomes money. -#}
    (
        (
            abs(cast(coalesce({{ quantity }}, 0) as double))
            * abs(cast(coalesce({{ unit_price }}, 0) as double))
            + abs(cast(coalesce({{ flat_fee }}, 0) as double))
        ) * greatest(abs(cast(coalesce({{ multiplier }}, 1) as double)), 1) >= 1e15
    )
{%- endmacro %}

{% macro credit_note_priority() -%}
    {#- Credit notes are spent before every grant (billing/rules/credits.py
        CREDIT_NOTE_PRIORITY); seeded priorities must stay above it (a rate-card check). -#}
    -1000000000
{%- endmacro %}
