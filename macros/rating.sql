{#
    Rating macros: one per charge model (architecture §6.3), named as Lago names its services.
    Each returns an unrounded decimal amount; rounding happens once, in round_money().
    Tiers are ordered by `tier`; `up_to` is cumulative and inclusive; a tier's lower bound
    is the previous tier's `up_to` (0 for tier 1); a blank `up_to` is the open last tier.
#}

{% macro rate_standard(quantity, unit_price) -%}
    ({{ quantity }} * coalesce({{ unit_price }}, 0))
{%- endmacro %}

{% macro rate_package(quantity, unit_price, package_size, free_units) -%}
    {# ceil(max(q - free_units, 0) / package_size) packages, each at unit_price. #}
    ({{ package_count(quantity, package_size, free_units) }} * coalesce({{ unit_price }}, 0))
{%- endmacro %}

{% macro package_count(quantity, package_size, free_units) -%}
    {{ divide_and_round(
        "greatest(" ~ quantity ~ " - coalesce(" ~ free_units ~ ", 0), 0)",
        package_size, "0", "'up'"
    ) }}
{%- endmacro %}

{% macro graduated_units_in_tier(quantity, lower_bound, up_to) -%}
    {# min(q, up_to) - previous up_to, never below zero. #}
    greatest(
        least({{ quantity }}, coalesce({{ up_to }}, {{ quantity }})) - {{ lower_bound }}, 0
    )
{%- endmacro %}

{% macro tier_is_reached(quantity, lower_bound) -%}
    {# Tier 1 is always reached (its flat fee is due at zero usage); later tiers once q
       passes their lower bound. #}
    ({{ lower_bound }} = 0 or {{ quantity }} > {{ lower_bound }})
{%- endmacro %}

{% macro rate_graduated(quantity, lower_bound, up_to, unit_price, flat_fee) -%}
    {# The amount of one tier; a graduated charge is the sum over its tiers. #}
    (
        {{ graduated_units_in_tier(quantity, lower_bound, up_to) }} * coalesce({{ unit_price }}, 0)
        + case
            when {{ tier_is_reached(quantity, lower_bound) }} then coalesce({{ flat_fee }}, 0)
            else 0
        end
    )
{%- endmacro %}

{% macro is_selected_tier(quantity, lower_bound, up_to) -%}
    {# The single tier with previous up_to < q <= up_to; tier 1 at zero usage. #}
    (
        ({{ lower_bound }} = 0 or {{ quantity }} > {{ lower_bound }})
        and ({{ up_to }} is null or {{ quantity }} <= {{ up_to }})
    )
{%- endmacro %}

{% macro rate_volume(quantity, unit_price, flat_fee) -%}
    {# All units at the selected tier's price, plus its flat fee. #}
    ({{ quantity }} * coalesce({{ unit_price }}, 0) + coalesce({{ flat_fee }}, 0))
{%- endmacro %}

{% macro rate_staircase(flat_fee) -%}
    {# The selected tier's flat fee alone. #}
    coalesce({{ flat_fee }}, 0)
{%- endmacro %}
