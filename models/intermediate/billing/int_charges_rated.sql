{#
    Every charge priced with its model's rating macro: one row per standard, package,
    volume, staircase or percentage charge, and one per reached tier of a graduated or
    graduated_percentage charge, then times
    the subscription's price multiplier (subscription_overrides.csv: a charge's own row wins
    over a row for every charge). A subscription's row for a charge, in force for the period,
    may also replace the charge's unit price and, with rows in
    subscription_override_tiers.csv, its tiers (D77). Amounts are unrounded decimals;
    rounding happens when lines are assembled.
#}
{#- Per charge model: could the line reach 10^15? Checked before the exact product. #}
{%- set guards = {
    'standard': is_beyond_line_amount('charge_quantities.quantity',
        'charge_quantities.unit_price',
        multiplier='charge_quantities.price_multiplier'),
    'package': is_beyond_line_amount('charge_quantities.package_count',
        'charge_quantities.unit_price',
        multiplier='charge_quantities.price_multiplier'),
    'graduated': is_beyond_line_amount(graduated_units_in_tier(
            'charge_quantities.quantity',
            'tiers_with_bounds.lower_bound',
            'tiers_with_bounds.up_to'
        ),
        'tiers_with_bounds.unit_price',
        'tiers_with_bounds.flat_fee',
        'charge_quantities.price_multiplier'),
    'percentage': 'charge_quantities.is_fee_out_of_range or ' ~ is_beyond_line_amount(
        'charge_quantities.percentage_fee', '1',
        multiplier='charge_quantities.price_multiplier'),
    'single_tier': is_beyond_line_amount('charge_quantities.quantity',
        "case when charge_quantities.charge_model = 'volume' "
        ~ "then tiers_with_bounds.unit_price else 0 end",
        'tiers_with_bounds.flat_fee',
        'charge_quantities.price_multiplier')
} %}

with

charge_quantities_unpriced as (

    select * from {{ ref('int_charges_metered_to_periods') }}

),

plan_charge_tiers as (

    select * from {{ ref('plan_charge_tiers') }}

),

subscription_overrides as (

    select * from {{ ref('subscription_overrides') }}

),

subscription_override_tiers as (

    select * from {{ ref('subscription_override_tiers') }}

),

overrides_with_tiers as (

    select distinct override_id from subscription_override_tiers

),

charge_quantities as (

    {# The multiplier has at most 4 decimals (a rate-card check), so an amount of
       decimal(38, 18) times it is decimal(38, 22): exact below 10^16 (DECISIONLOG D33).
       At most one override row per subscription and charge (or per subscription, for
       every charge) is in force in a period: another rate-card check. #}
    select
        charge_quantities_unpriced.* exclude (unit_price),
        coalesce(charge_override.unit_price, charge_quantities_unpriced.unit_price)
            as unit_price,
        {#- The tier table that prices the charge: the override's when it has tiers. #}
        coalesce(
            'override:' || overrides_with_tiers.override_id,
            'plan:' || charge_quantities_unpriced.charge_id
        ) as tier_table_id,
        cast(coalesce(
            charge_override.price_multiplier, subscription_override.price_multiplier, 1
        ) as decimal(18, 4)) as price_multiplier,
        {{ package_count(
            'charge_quantities_unpriced.quantity',
            'charge_quantities_unpriced.package_size',
            'charge_quantities_unpriced.free_units'
        ) }} as package_count
    from charge_quantities_unpriced
    left join subscription_overrides as charge_override
        on
            charge_quantities_unpriced.subscription_id = charge_override.subscription_id
            and charge_quantities_unpriced.charge_id = charge_override.charge_id
            and {{ falls_within(
                'charge_quantities_unpriced.billing_period_start',
                "coalesce(charge_override.starts_on, date '1900-01-01')",
                'charge_override.ends_on'
            ) }}
    left join subscription_overrides as subscription_override
        on
            charge_quantities_unpriced.subscription_id = subscription_override.subscription_id
            and subscription_override.charge_id is null
            and {{ falls_within(
                'charge_quantities_unpriced.billing_period_start',
                "coalesce(subscription_override.starts_on, date '1900-01-01')",
                'subscription_override.ends_on'
            ) }}
    left join overrides_with_tiers
        on charge_override.override_id = overrides_with_tiers.override_id

),

tier_tables as (

    select
        'plan:' || charge_id as tier_table_id,
        tier,
        up_to,
        unit_price,
        flat_fee,
        rate_percent
    from plan_charge_tiers
    union all
    select
        'override:' || override_id as tier_table_id,
        tier,
        up_to,
        unit_price,
        flat_fee,
        rate_percent
    from subscription_override_tiers

),

tiers_with_bounds as (

    {# A graduated_percentage tier's price per unit of value is its rate (D76). #}
    select
        tier_table_id,
        tier,
        coalesce(lag(up_to) over (partition by tier_table_id order by tier), 0) as lower_bound,
        up_to,
        coalesce(unit_price, {{ percent_of('1', 'rate_percent') }}) as unit_price,
        flat_fee
    from tier_tables

),

standard_rated as (

    select
        charge_quantities.*,
        cast(null as integer) as tier,
        charge_quantities.quantity as line_quantity,
        charge_quantities.unit_price as line_unit_price,
        {{ guards['standard'] }} as is_amount_out_of_range,
        case
            when not {{ guards['standard'] }}
                then {{ rate_standard(
                    'charge_quantities.quantity', 'charge_quantities.unit_price'
                ) }}
        end as amount_unrounded
    from charge_quantities
    where charge_quantities.charge_model = 'standard'

),

package_rated as (

    select
        charge_quantities.*,
        cast(null as integer) as tier,
        charge_quantities.quantity as line_quantity,
        charge_quantities.unit_price as line_unit_price,
        {{ guards['package'] }} as is_amount_out_of_range,
        case
            when not {{ guards['package'] }}
                then {{ rate_package(
                    'charge_quantities.quantity',
                    'charge_quantities.unit_price',
                    'charge_quantities.package_size',
                    'charge_quantities.free_units'
                ) }}
        end as amount_unrounded
    from charge_quantities
    where charge_quantities.charge_model = 'package'

),

percentage_rated as (

    {# The sum of the period's event fees (int_usage_aggregated_to_charges); the line
       shows the summed value and the rate as a price per unit of value. #}
    select
        charge_quantities.*,
        cast(null as integer) as tier,
        charge_quantities.quantity as line_quantity,
        {{ percent_of('1', 'charge_quantities.rate_percent') }} as line_unit_price,
        {{ guards['percentage'] }} as is_amount_out_of_range,
        case
            when not ({{ guards['percentage'] }})
                then cast(charge_quantities.percentage_fee as decimal(38, 18))
        end as amount_unrounded
    from charge_quantities
    where charge_quantities.charge_model = 'percentage'

),

graduated_rated as (

    select
        charge_quantities.*,
        tiers_with_bounds.tier,
        {{ graduated_units_in_tier(
            'charge_quantities.quantity', 'tiers_with_bounds.lower_bound', 'tiers_with_bounds.up_to'
        ) }} as line_quantity,
        tiers_with_bounds.unit_price as line_unit_price,
        {{ guards['graduated'] }} as is_amount_out_of_range,
        case
            when not {{ guards['graduated'] }}
                then {{ rate_graduated(
                    'charge_quantities.quantity',
                    'tiers_with_bounds.lower_bound',
                    'tiers_with_bounds.up_to',
                    'tiers_with_bounds.unit_price',
                    'tiers_with_bounds.flat_fee'
                ) }}
        end as amount_unrounded
    from charge_quantities
    inner join tiers_with_bounds
        on charge_quantities.tier_table_id = tiers_with_bounds.tier_table_id
    where
        charge_quantities.charge_model in ('graduated', 'graduated_percentage')
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
        {{ guards['single_tier'] }} as is_amount_out_of_range,
        case
            {#- Each branch at scale 18: a CASE over decimal(38, 18) and decimal(38, 9) is
                decimal(38, 9), which would round a volume amount before round_money. #}
            when {{ guards['single_tier'] }} then null
            when charge_quantities.charge_model = 'volume'
                then
                    cast({{ rate_volume(
                        'charge_quantities.quantity',
                        'tiers_with_bounds.unit_price',
                        'tiers_with_bounds.flat_fee'
                    ) }} as decimal(38, 18))
            else cast({{ rate_staircase('tiers_with_bounds.flat_fee') }} as decimal(38, 18))
        end as amount_unrounded
    from charge_quantities
    inner join tiers_with_bounds
        on charge_quantities.tier_table_id = tiers_with_bounds.tier_table_id
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
    'is_quantity_out_of_range', 'price_multiplier',
    'min_amount', 'max_amount', 'max_amount_rounded', 'min_amount_prorated',
    'billing_period_start', 'tier', 'line_quantity', 'line_unit_price', 'amount_unrounded',
] %}

all_rated as (

    {%- for rated in [
        'standard_rated', 'package_rated', 'percentage_rated', 'graduated_rated',
        'single_tier_rated'
    ] %}
    {#- Each branch's amount at scale 18 before the union: DuckDB gives a union of
        decimal(38, 18) and decimal(38, 9) the type decimal(38, 9), which would round a
        product of a 9-decimal quantity and a 9-decimal price before round_money does. #}
    select
        {{ rated_columns | reject('equalto', 'amount_unrounded') | join(',\n        ') }},
        cast(amount_unrounded as decimal(38, 18)) as amount_unrounded,
        is_amount_out_of_range
    from {{ rated }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}

),

rated_flagged as (

    select
        * exclude (is_amount_out_of_range),
        coalesce(is_amount_out_of_range, false)
        or coalesce(is_quantity_out_of_range, false) as is_out_of_range
    from all_rated

),

rated_with_multiplier as (

    {# A line beyond the supported range (or of a quantity beyond it) is not rated: its
       amount stays null and its customer's invoices are held (int_invoices_calculated). #}
    select
        * exclude (line_unit_price, amount_unrounded),
        cast(line_unit_price as decimal(38, 9)) * price_multiplier as line_unit_price,
        case
            when not is_out_of_range then cast(amount_unrounded as decimal(38, 18))
        end as list_amount_unrounded,
        case
            when not is_out_of_range
                then {{ apply_multiplier('amount_unrounded', 'price_multiplier') }}
        end as amount_unrounded
    from rated_flagged

)

select * from rated_with_multiplier
