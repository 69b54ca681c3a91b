{#
    Accounts that cannot be billed unambiguously fail the build before any invoice is made:
    subscriptions, their contract prices (D77), credit grants, usage thresholds (D78) and
    payment terms (D79) and trials (D82).
    One row per problem, with the subscription, grant or threshold and what is wrong.
#}
{# Orchestration shows this test as a check on the model it is about. #}
{{ config(meta={'dagster': {'ref': {'name': 'subscriptions'}}}) }}

with

subscriptions as (

    select * from {{ ref('subscriptions') }}

),

plans as (

    select * from {{ ref('plans') }}

),

customers as (

    select * from {{ ref('customers') }}

),

plan_charges as (

    select * from {{ ref('plan_charges') }}

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

usage_thresholds as (

    select * from {{ ref('usage_thresholds') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

meters as (

    select * from {{ ref('meters') }}

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

threshold_problems as (

    {# A threshold a customer period can reach, on a value with one customer total (D78):
       per-dimension distinct counts, latest values or p95s do not add up to one. #}
    select
        usage_thresholds.threshold_id as charge_id,
        case
            when usage_thresholds.meter_id is not null and meters.meter_id is null
                then 'no meter ' || usage_thresholds.meter_id
            when
                meters.group_by_property is not null
                and meters.aggregation not in ('count', 'sum', 'max', 'min')
                then
                    'a ' || meters.aggregation || ' meter grouped by '
                    || meters.group_by_property || ' has no customer total to watch'
            when
                usage_thresholds.threshold <= 0
                or usage_thresholds.threshold >= {{ max_line_amount() }}
                then 'threshold ' || usage_thresholds.threshold || ' must lie in (0, 10^15)'
            when
                usage_thresholds.meter_id is null
                and usage_thresholds.threshold
                != {{ round_money('usage_thresholds.threshold', 'currencies.minor_units') }}
                then
                    'spend threshold ' || usage_thresholds.threshold
                    || ' must be in whole minor units of ' || currencies.currency
                    || ' (' || currencies.minor_units || ')'
        end as problem
    from usage_thresholds
    left join meters
        on usage_thresholds.meter_id = meters.meter_id
    left join customers
        on usage_thresholds.customer_id = customers.customer_id
    left join currencies
        on customers.currency = currencies.currency

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

{# Payment terms beyond a year are a typo, not a contract (D79). #}
terms_problems as (

    select
        customer_id as charge_id,
        'net_terms_days ' || net_terms_days || ' is outside 0 to 365' as problem
    from customers
    where net_terms_days not between 0 and 365

),

{# A trial is at most a year; a negative one is a typo (D82). #}
trial_problems as (

    select
        subscription_id as charge_id,
        'trial_days ' || trial_days || ' is outside 0 to 365' as problem
    from subscriptions
    where trial_days not between 0 and 365
    union all
    select
        subscription_id as charge_id,
        case
            when trial_usage not in ('billed', 'free')
                then 'trial_usage ' || trial_usage || ' is neither billed nor free'
            when trial_usage = 'free' and coalesce(trial_days, 0) = 0
                then 'trial_usage free needs trial_days'
        end as problem
    from subscriptions
    where
        trial_usage not in ('billed', 'free')
        or (trial_usage = 'free' and coalesce(trial_days, 0) = 0)

),

all_problems as (

    select * from trial_problems
    union all
    select * from override_problems
    where problem is not null
    union all
    select * from overlapping_overrides
    union all
    select * from grant_problems
    union all
    select * from threshold_problems
    where problem is not null
    union all
    select * from overlapping_subscriptions
    union all
    select * from currency_problems
    union all
    select * from terms_problems

)

select * from all_problems
