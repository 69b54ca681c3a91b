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

{% macro percent_of(amount, rate_percent) -%}
    {#- rate_percent % of amount, exactly: a rate has at most 4 decimals (a rate-card check)
        and 0.01 is a decimal, so nothing is divided in floating point. -#}
    (
        {{ amount }}
        * cast({{ rate_percent }} as decimal(18, 4))
        * cast(0.01 as decimal(3, 2))
    )
{%- endmacro %}

{% macro is_within_free_allowance(position, running_total, free_events, free_amount) -%}
    {#- The free allowance of a percentage charge lasts while both of its limits hold: the
        period's first free_events events and its first free_amount of value. -#}
    (
        ({{ free_events }} is not null or {{ free_amount }} is not null)
        and ({{ free_events }} is null or {{ position }} <= {{ free_events }})
        and ({{ free_amount }} is null or {{ running_total }} <= {{ free_amount }})
    )
{%- endmacro %}

{% macro percentage_chargeable_value(value, position, running_total, free_events, free_amount) -%}
    {#- The part of an event's value a percentage charge rates: the excess over free_amount
        for the event that crosses it while the free events last, else all of it. -#}
    case
        when {{ free_amount }} is not null and ({{ free_events }} is null or {{ position }} <= {{ free_events }})
            then
                greatest({{ running_total }} - {{ free_amount }}, 0)
                - greatest({{ running_total }} - {{ value }} - {{ free_amount }}, 0)
        else {{ value }}
    end
{%- endmacro %}

{% macro percentage_event_fee(
    value, position, running_total, rate_percent, fixed_fee, free_events, free_amount,
    min_fee, max_fee
) -%}
    {#- One event's fee under a percentage charge (DECISIONLOG D76). `value` is the event's
        value (above 0), `position` its place in the period (1 = first, by time then
        event id) and `running_total` the period's values up to and including it. An event
        inside the free allowance pays nothing; any other pays rate_percent % of its
        chargeable value plus fixed_fee, held between min_fee and max_fee. The sum of a
        period's event fees is the charge's amount. -#}
    case
        when {{ is_within_free_allowance(position, running_total, free_events, free_amount) }}
            then cast(0 as decimal(38, 15))
        {#- Every operand at scale 15: DuckDB would bring decimals of different scales to a
            common type of at most 38 digits, and drop the rate's last decimals. #}
        else least(
            greatest(
                cast({{ percent_of(
                    percentage_chargeable_value(
                        value, position, running_total, free_events, free_amount
                    ),
                    rate_percent
                ) }} as decimal(38, 15))
                + cast(coalesce({{ fixed_fee }}, 0) as decimal(38, 15)),
                cast(coalesce({{ min_fee }}, 0) as decimal(38, 15))
            ),
            cast(coalesce({{ max_fee }}, {{ max_line_amount() }}) as decimal(38, 15))
        )
    end
{%- endmacro %}
