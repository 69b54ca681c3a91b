{#
    A rate card that cannot be priced unambiguously fails the build before any invoice is
    made. One row per problem, with the charge (or subscription) and what is wrong.
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

subscriptions as (

    select * from {{ ref('subscriptions') }}

),

plans as (

    select * from {{ ref('plans') }}

),

customers as (

    select * from {{ ref('customers') }}

),

subscription_overrides as (

    select * from {{ ref('subscription_overrides') }}

),

subscription_override_tiers as (

    select * from {{ ref('subscription_override_tiers') }}

),

credit_grants as (

    select * from {{ ref('credit_grants') }}

),

currencies as (

    select * from {{ ref('currencies') }}

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

overrides_with_tiers as (

    select distinct override_id from subscription_override_tiers

),

override_problems as (

    {# A subscription's contract prices (D77): each row changes something, on a charge of
       the subscription's plan that reads it, from one period boundary to a later one. #}
    select
        subscription_overrides.subscription_id || ':'
        || coalesce(subscription_overrides.charge_id, '*') as charge_id,
        case
            when subscriptions.subscription_id is null
                then 'no subscription ' || subscription_overrides.subscription_id
            when
                subscription_overrides.charge_id is not null
                and plan_charges.charge_id is null
                then
                    'charge ' || subscription_overrides.charge_id || ' is not on plan '
                    || subscriptions.plan_id
            when
                subscription_overrides.price_multiplier is null
                and subscription_overrides.unit_price is null
                and subscription_overrides.base_fee is null
                and subscription_overrides.minimum_commitment is null
                and overrides_with_tiers.override_id is null
                then 'the override changes nothing'
            when
                subscription_overrides.price_multiplier not between 0 and 100
                or subscription_overrides.price_multiplier
                != round(subscription_overrides.price_multiplier, 4)
                then
                    'price_multiplier ' || subscription_overrides.price_multiplier
                    || ' must lie in [0, 100] with at most 4 decimals'
            when
                subscription_overrides.charge_id is not null
                and (
                    subscription_overrides.base_fee is not null
                    or subscription_overrides.minimum_commitment is not null
                )
                then 'base_fee and minimum_commitment override the plan: leave charge_id blank'
            when
                subscription_overrides.unit_price is not null
                and coalesce(plan_charges.charge_model, '') not in ('standard', 'package')
                then 'unit_price is overridden on standard and package charges only'
            when
                overrides_with_tiers.override_id is not null
                and subscription_overrides.charge_id is null
                then 'override tiers need the charge they price'
            when
                abs(coalesce(subscription_overrides.unit_price, 0)) >= {{ max_unit_price() }}
                then 'unit_price must be below 1,000,000,000'
            when
                greatest(
                    abs(coalesce(subscription_overrides.base_fee, 0)),
                    abs(coalesce(subscription_overrides.minimum_commitment, 0))
                ) >= {{ max_line_amount() }}
                then 'base_fee and minimum_commitment must be below 10^15'
            when
                extract(day from subscription_overrides.starts_on) != 1
                or extract(day from subscription_overrides.ends_on) != 1
                then 'starts_on and ends_on must be the first day of a billing period'
            when subscription_overrides.ends_on <= subscription_overrides.starts_on
                then 'ends_on must be after starts_on'
        end as problem
    from subscription_overrides
    left join subscriptions
        on subscription_overrides.subscription_id = subscriptions.subscription_id
    left join plan_charges
        on
            subscriptions.plan_id = plan_charges.plan_id
            and subscription_overrides.charge_id = plan_charges.charge_id
    left join overrides_with_tiers
        on subscription_overrides.override_id = overrides_with_tiers.override_id

),

overrides_numbered as (

    select
        *,
        row_number() over (
            order by
                subscription_id, charge_id, starts_on nulls first, ends_on, override_id
        ) as override_number
    from subscription_overrides

),

overlapping_overrides as (

    {# One row per subscription and charge (blank: the plan) is in force in a period;
       two would price it twice. #}
    select
        earlier.subscription_id || ':' || coalesce(earlier.charge_id, '*') as charge_id,
        'overrides ['
        || coalesce(cast(earlier.starts_on as varchar), 'start') || ', '
        || coalesce(cast(earlier.ends_on as varchar), 'open') || ') and ['
        || coalesce(cast(later.starts_on as varchar), 'start') || ', '
        || coalesce(cast(later.ends_on as varchar), 'open') || ') are in force at once'
            as problem
    from overrides_numbered as earlier
    inner join overrides_numbered as later
        on
            earlier.subscription_id = later.subscription_id
            and coalesce(earlier.charge_id, '') = coalesce(later.charge_id, '')
            and earlier.override_number < later.override_number
            and coalesce(earlier.starts_on, date '1900-01-01')
            < coalesce(later.ends_on, date '9999-12-31')
            and coalesce(later.starts_on, date '1900-01-01')
            < coalesce(earlier.ends_on, date '9999-12-31')

),

grant_problems as (

    select
        credit_grants.grant_id as charge_id,
        'credit grant amount ' || credit_grants.amount || ' ' || credit_grants.currency
        || ' must be above 0, below 10^15 and in whole minor units ('
        || coalesce(cast(currencies.minor_units as varchar), 'unknown currency')
        || '), with a priority above -10^9'
            as problem
    from credit_grants
    left join currencies
        on credit_grants.currency = currencies.currency
    where
        currencies.currency is null
        or credit_grants.amount is null
        or credit_grants.amount <= 0
        or coalesce(credit_grants.priority, 0) <= {{ credit_note_priority() }}
        or credit_grants.amount >= {{ max_line_amount() }}
        or credit_grants.amount
        != {{ round_money('credit_grants.amount', 'currencies.minor_units') }}

),

overlapping_subscriptions as (

    {# A customer holds one subscription per plan at a time; two rows whose
       [starts_on, ends_on) ranges overlap would bill the base fee twice. #}
    select
        earlier.subscription_id || ',' || later.subscription_id as charge_id,
        'subscriptions ' || earlier.subscription_id || ' and ' || later.subscription_id
        || ' of customer ' || earlier.customer_id || ' to plan ' || earlier.plan_id
        || ' overlap' as problem
    from subscriptions as earlier
    inner join subscriptions as later
        on
            earlier.customer_id = later.customer_id
            and earlier.plan_id = later.plan_id
            and earlier.subscription_id < later.subscription_id
            and earlier.starts_on < coalesce(later.ends_on, date '9999-12-31')
            and later.starts_on < coalesce(earlier.ends_on, date '9999-12-31')

),

currency_problems as (

    select
        subscriptions.subscription_id as charge_id,
        'plan currency ' || plans.currency || ' differs from customer currency '
        || customers.currency as problem
    from subscriptions
    inner join plans
        on subscriptions.plan_id = plans.plan_id
    inner join customers
        on subscriptions.customer_id = customers.customer_id
    where plans.currency != customers.currency

),

all_problems as (

    select * from tier_problems
    union all
    select * from charge_problems
    where problem is not null
    union all
    select * from currency_problems
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
    union all
    select * from override_problems
    where problem is not null
    union all
    select * from overlapping_overrides
    union all
    select * from grant_problems
    union all
    select * from overlapping_subscriptions

)

select * from all_problems
