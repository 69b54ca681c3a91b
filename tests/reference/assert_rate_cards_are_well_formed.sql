{#
    A rate card that cannot be priced unambiguously fails the build before any invoice is
    made. One row per problem, with the charge (or tier table) and what is wrong. The
    accounts that use the rate cards are checked by assert_accounts_are_well_formed.
#}
{# Orchestration shows this test as a check on the model it is about. #}
{{ config(meta={'dagster': {'ref': {'name': 'plan_charges'}}}) }}

with

plan_charges as (

    select * from {{ ref('plan_charges') }}

),

plan_charge_tiers as (

    select * from {{ ref('plan_charge_tiers') }}

),

plans as (

    select * from {{ ref('plans') }}

),

subscription_overrides as (

    select * from {{ ref('subscription_overrides') }}

),

subscription_override_tiers as (

    select * from {{ ref('subscription_override_tiers') }}

),

meters as (

    select * from {{ ref('meters') }}

),

tiered_charges as (

    select distinct charge_id from plan_charge_tiers

),

all_tiers as (

    {# Every tier table: a charge's plan tiers, named by the charge, and a subscription
       override's tiers (D77), named by the charge and the override. #}
    select
        charge_id,
        charge_id as tier_table,
        tier,
        up_to,
        unit_price,
        flat_fee,
        rate_percent
    from plan_charge_tiers
    union all
    select
        subscription_overrides.charge_id,
        coalesce(subscription_overrides.charge_id, '*')
        || ' override ' || subscription_override_tiers.override_id as tier_table,
        subscription_override_tiers.tier,
        subscription_override_tiers.up_to,
        subscription_override_tiers.unit_price,
        subscription_override_tiers.flat_fee,
        subscription_override_tiers.rate_percent
    from subscription_override_tiers
    left join subscription_overrides
        on subscription_override_tiers.override_id = subscription_overrides.override_id

),

tiers_ordered as (

    select
        tier_table,
        tier,
        up_to,
        lag(up_to) over (partition by tier_table order by tier) as previous_up_to,
        row_number() over (partition by tier_table order by tier desc) = 1 as is_last_tier
    from all_tiers

),

tier_problems as (

    select
        tier_table as charge_id,
        case
            when is_last_tier and up_to is not null
                then 'the last tier must have a blank up_to'
            when not is_last_tier and up_to is null
                then 'only the last tier may have a blank up_to'
            else 'up_to must increase from tier to tier'
        end as problem
    from tiers_ordered
    where
        (is_last_tier and up_to is not null)
        or (not is_last_tier and up_to is null)
        or (up_to is not null and previous_up_to is not null and up_to <= previous_up_to)

),

charge_problems as (

    select
        plan_charges.charge_id,
        case
            when
                plan_charges.charge_model in (
                    'graduated', 'volume', 'staircase', 'graduated_percentage'
                )
                and tiered_charges.charge_id is null
                then plan_charges.charge_model || ' charge has no tiers'
            when
                plan_charges.charge_model in ('standard', 'package')
                and plan_charges.unit_price is null
                then plan_charges.charge_model || ' charge has no unit_price'
            when
                plan_charges.charge_model = 'package'
                and coalesce(plan_charges.package_size, 0) <= 0
                then 'package charge needs a package_size above 0'
            when plan_charges.quantity_divisor <= 0
                then 'quantity_divisor must be above 0'
            when plan_charges.quantity_precision not between -9 and 9
                then 'quantity_precision must be between -9 and 9'
            {#- The supported ranges (README, DECISIONLOG D33): rating is exact inside them
                and never overflows. #}
            when abs(plan_charges.unit_price) >= {{ max_unit_price() }}
                then 'unit_price must be below 1,000,000,000'
            when
                greatest(
                    abs(coalesce(plan_charges.min_amount, 0)),
                    abs(coalesce(plan_charges.max_amount, 0)),
                    coalesce(plan_charges.free_units, 0),
                    coalesce(plan_charges.package_size, 0)
                ) >= {{ max_line_amount() }}
                then 'min_amount, max_amount, free_units and package_size must be below 10^15'
        end as problem
    from plan_charges
    left join tiered_charges
        on plan_charges.charge_id = tiered_charges.charge_id

),

percentage_problems as (

    {# D76: a percentage charge rates the summed value of a sum meter as sent, with a rate
       of 0 to 100 % in 4 decimals and per-event fees inside the supported ranges. #}
    select
        plan_charges.charge_id,
        case
            when
                plan_charges.charge_model not in ('percentage', 'graduated_percentage')
                and coalesce(
                    plan_charges.rate_percent, plan_charges.fixed_fee_per_event,
                    plan_charges.free_events, plan_charges.free_amount,
                    plan_charges.min_fee_per_event, plan_charges.max_fee_per_event
                ) is not null
                then
                    'rate_percent, fixed_fee_per_event, free_events, free_amount, '
                    || 'min_fee_per_event and max_fee_per_event are read by percentage '
                    || 'charges only'
            when plan_charges.charge_model not in ('percentage', 'graduated_percentage')
                then null
            when meters.aggregation != 'sum'
                then
                    plan_charges.charge_model || ' charge needs a sum meter, not '
                    || meters.aggregation
            when
                plan_charges.quantity_divisor is not null
                or plan_charges.quantity_precision is not null
                or coalesce(plan_charges.quantity_rounding, 'none') != 'none'
                then
                    plan_charges.charge_model || ' charge rates the value as sent: '
                    || 'quantity_divisor, quantity_rounding and quantity_precision stay blank'
            when
                plan_charges.charge_model = 'graduated_percentage'
                and coalesce(
                    plan_charges.rate_percent, plan_charges.fixed_fee_per_event,
                    plan_charges.free_events, plan_charges.free_amount,
                    plan_charges.min_fee_per_event, plan_charges.max_fee_per_event
                ) is not null
                then 'graduated_percentage charge takes its rates from its tiers'
            when plan_charges.charge_model = 'graduated_percentage'
                then null
            when plan_charges.rate_percent is null
                then 'percentage charge has no rate_percent'
            when
                plan_charges.rate_percent not between 0 and 100
                or plan_charges.rate_percent != round(plan_charges.rate_percent, 4)
                then
                    'rate_percent ' || plan_charges.rate_percent
                    || ' must lie in [0, 100] with at most 4 decimals'
            when
                least(
                    plan_charges.fixed_fee_per_event,
                    plan_charges.min_fee_per_event,
                    plan_charges.max_fee_per_event
                ) < 0
                or greatest(
                    plan_charges.fixed_fee_per_event,
                    plan_charges.min_fee_per_event,
                    plan_charges.max_fee_per_event
                ) >= {{ max_unit_price() }}
                then
                    'fixed_fee_per_event, min_fee_per_event and max_fee_per_event must lie '
                    || 'in [0, 1,000,000,000)'
            when plan_charges.min_fee_per_event > plan_charges.max_fee_per_event
                then 'min_fee_per_event must not exceed max_fee_per_event'
            when
                plan_charges.free_events < 0
                or plan_charges.free_amount < 0
                or plan_charges.free_amount >= {{ max_line_amount() }}
                then 'free_events and free_amount must not be negative, free_amount below 10^15'
        end as problem
    from plan_charges
    inner join meters
        on plan_charges.meter_id = meters.meter_id

),

tier_rate_problems as (

    select
        all_tiers.tier_table as charge_id,
        'tier ' || all_tiers.tier || ': ' || case
            when plan_charges.charge_model != 'graduated_percentage'
                then 'rate_percent is read by graduated_percentage tiers only'
            when all_tiers.rate_percent is null or all_tiers.unit_price is not null
                then 'a graduated_percentage tier takes a rate_percent and no unit_price'
            else
                'rate_percent ' || all_tiers.rate_percent
                || ' must lie in [0, 100] with at most 4 decimals'
        end as problem
    from all_tiers
    inner join plan_charges
        on all_tiers.charge_id = plan_charges.charge_id
    where
        (
            plan_charges.charge_model != 'graduated_percentage'
            and all_tiers.rate_percent is not null
        )
        or (
            plan_charges.charge_model = 'graduated_percentage'
            and (
                all_tiers.rate_percent is null
                or all_tiers.unit_price is not null
                or all_tiers.rate_percent not between 0 and 100
                or all_tiers.rate_percent != round(all_tiers.rate_percent, 4)
            )
        )

),

stray_tier_problems as (

    {# Tiers of a charge whose model reads none would be ignored without a word. #}
    select distinct
        all_tiers.tier_table as charge_id,
        'tiers are read by graduated, volume, staircase and graduated_percentage charges only'
            as problem
    from all_tiers
    inner join plan_charges
        on all_tiers.charge_id = plan_charges.charge_id
    where
        plan_charges.charge_model not in (
            'graduated', 'volume', 'staircase', 'graduated_percentage'
        )

),

tier_value_problems as (

    select
        tier_table as charge_id,
        'tier ' || tier || ': unit_price must be below 1,000,000,000 and flat_fee below 10^15'
            as problem
    from all_tiers
    where
        abs(coalesce(unit_price, 0)) >= {{ max_unit_price() }}
        or abs(coalesce(flat_fee, 0)) >= {{ max_line_amount() }}

),

plan_problems as (

    select
        plan_id as charge_id,
        'base_fee and minimum_commitment must be below 10^15' as problem
    from plans
    where
        abs(coalesce(base_fee, 0)) >= {{ max_line_amount() }}
        or abs(coalesce(minimum_commitment, 0)) >= {{ max_line_amount() }}

),

all_problems as (

    select * from tier_problems
    union all
    select * from charge_problems
    where problem is not null
    union all
    select * from tier_value_problems
    union all
    select * from percentage_problems
    where problem is not null
    union all
    select * from tier_rate_problems
    union all
    select * from stray_tier_problems
    union all
    select * from plan_problems

)

select * from all_problems
