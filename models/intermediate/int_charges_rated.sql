{#
    Every charge priced with its model's rating macro: one row per standard, package,
    volume or staircase charge, and one per reached tier of a graduated charge, then times
    the subscription's price multiplier (subscription_overrides.csv: a charge's own row wins
    over a row for every charge). Amounts are unrounded decimals; rounding happens when
    lines are assembled.
#}
with

charge_quantities as (

    select * from {{ ref('int_charges_metered_to_periods') }}

),

plan_charge_tiers as (

    select * from {{ ref('plan_charge_tiers') }}

),

subscription_overrides as (

    select * from {{ ref('subscription_overrides') }}

),

tiers_with_bounds as (

    select
        charge_id,
        tier,
        coalesce(lag(up_to) over (partition by charge_id order by tier), 0) as lower_bound,
        up_to,
        unit_price,
        flat_fee
    from plan_charge_tiers

),

standard_rated as (

    select
        charge_quantities.*,
        cast(null as integer) as tier,
        charge_quantities.quantity as line_quantity,
        charge_quantities.unit_price as line_unit_price,
        {{ rate_standard('charge_quantities.quantity', 'charge_quantities.unit_price') }}
            as amount_unrounded
    from charge_quantities
    where charge_quantities.charge_model = 'standard'

),

package_rated as (

    select
        charge_quantities.*,
        cast(null as integer) as tier,
        charge_quantities.quantity as line_quantity,
        charge_quantities.unit_price as line_unit_price,
        {{ rate_package(
            'charge_quantities.quantity',
            'charge_quantities.unit_price',
            'charge_quantities.package_size',
            'charge_quantities.free_units'
        ) }} as amount_unrounded
    from charge_quantities
    where charge_quantities.charge_model = 'package'

),

graduated_rated as (

    select
        charge_quantities.*,
        tiers_with_bounds.tier,
        {{ graduated_units_in_tier(
            'charge_quantities.quantity', 'tiers_with_bounds.lower_bound', 'tiers_with_bounds.up_to'
        ) }} as line_quantity,
        tiers_with_bounds.unit_price as line_unit_price,
        {{ rate_graduated(
            'charge_quantities.quantity',
            'tiers_with_bounds.lower_bound',
            'tiers_with_bounds.up_to',
            'tiers_with_bounds.unit_price',
            'tiers_with_bounds.flat_fee'
        ) }} as amount_unrounded
    from charge_quantities
    inner join tiers_with_bounds
        on charge_quantities.charge_id = tiers_with_bounds.charge_id
    where
        charge_quantities.charge_model = 'graduated'
        and {{ tier_is_reached('charge_quantities.quantity', 'tiers_with_bounds.lower_bound') }}

),

single_tier_rated as (

    select
        charge_quantities.*,
        tiers_with_bounds.tier,
        charge_quantities.quantity as line_quantity,
        case
            when charge_quantities.charge_model = 'volume' then tiers_with_bounds.unit_price
        end as line_unit_price,
        case
            when charge_quantities.charge_model = 'volume'
                then
                    {{ rate_volume(
                        'charge_quantities.quantity',
                        'tiers_with_bounds.unit_price',
                        'tiers_with_bounds.flat_fee'
                    ) }}
            else {{ rate_staircase('tiers_with_bounds.flat_fee') }}
        end as amount_unrounded
    from charge_quantities
    inner join tiers_with_bounds
        on charge_quantities.charge_id = tiers_with_bounds.charge_id
    where
        charge_quantities.charge_model in ('volume', 'staircase')
        and {{ is_selected_tier(
            'charge_quantities.quantity', 'tiers_with_bounds.lower_bound', 'tiers_with_bounds.up_to'
        ) }}

),

{%- set rated_columns = [
    'charge_period_id', 'scenario', 'subscription_period_id', 'subscription_id', 'customer_id',
    'charge_id', 'meter_id', 'dimension_value', 'charge_model', 'display_name', 'unit_name',
    'aggregate_quantity', 'quantity', 'event_count', 'has_negative_quantity',
    'min_amount', 'max_amount', 'max_amount_rounded', 'min_amount_prorated',
    'billing_period_start', 'tier', 'line_quantity', 'line_unit_price', 'amount_unrounded',
] %}

all_rated as (

    {%- for rated in ['standard_rated', 'package_rated', 'graduated_rated', 'single_tier_rated'] %}
    select
        {{ rated_columns | join(',\n        ') }}
    from {{ rated }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

multipliers as (

    select
        charge_quantities.charge_period_id,
        coalesce(
            charge_override.price_multiplier, subscription_override.price_multiplier, 1
        ) as price_multiplier
    from charge_quantities
    left join subscription_overrides as charge_override
        on
            charge_quantities.subscription_id = charge_override.subscription_id
            and charge_quantities.charge_id = charge_override.charge_id
    left join subscription_overrides as subscription_override
        on
            charge_quantities.subscription_id = subscription_override.subscription_id
            and subscription_override.charge_id is null

),

rated_with_multiplier as (

    select
        all_rated.* exclude (line_unit_price, amount_unrounded),
        multipliers.price_multiplier,
        all_rated.line_unit_price * multipliers.price_multiplier as line_unit_price,
        all_rated.amount_unrounded as list_amount_unrounded,
        all_rated.amount_unrounded * multipliers.price_multiplier as amount_unrounded
    from all_rated
    inner join multipliers
        on all_rated.charge_period_id = multipliers.charge_period_id

)

select * from rated_with_multiplier
