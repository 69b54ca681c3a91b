{#
    Each subscription in each billing period it is active in, with its active days: the
    basis of base-fee and commitment proration (architecture §6.4). A subscription's
    override row without a charge (subscription_overrides.csv), in force for the period,
    replaces the plan's base fee or minimum commitment (D77). A trial (`trial_days` from
    `starts_on`, D82) is free of time-based fees: the base fee, the commitment and the
    charge minimums are prorated over the paid days, the active days outside the trial.
#}
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

currencies as (

    select * from {{ ref('currencies') }}

),

subscription_overrides as (

    select * from {{ ref('subscription_overrides') }}

),

billing_periods as (

    select * from {{ ref('int_billing_periods') }}

),

subscription_periods as (

    select
        ---------- ids
        subscriptions.subscription_id
        || ':' || strftime(billing_periods.billing_period_start, '%Y-%m') as subscription_period_id,
        subscriptions.subscription_id,
        subscriptions.customer_id,
        subscriptions.plan_id,
        plans.plan_name,
        plans.currency as plan_currency,
        customers.currency as customer_currency,
        currencies.minor_units,
        ---------- numerics
        coalesce(plan_override.base_fee, plans.base_fee) as base_fee,
        coalesce(plan_override.minimum_commitment, plans.minimum_commitment)
            as minimum_commitment,
        customers.tax_rate,
        billing_periods.days_in_period,
        datediff(
            'day',
            greatest(subscriptions.starts_on, billing_periods.billing_period_start),
            least(
                coalesce(subscriptions.ends_on, billing_periods.billing_period_end),
                billing_periods.billing_period_end
            )
        ) as active_days,
        ---------- dates
        billing_periods.billing_period_start,
        billing_periods.billing_period_end,
        greatest(subscriptions.starts_on, billing_periods.billing_period_start) as active_from,
        least(
            coalesce(subscriptions.ends_on, billing_periods.billing_period_end),
            billing_periods.billing_period_end
        ) as active_until,
        {# The trial's first paid day (exclusive end), never after the subscription's end. #}
        case
            when subscriptions.trial_days > 0
                then least(
                    {{ add_days('subscriptions.starts_on', 'subscriptions.trial_days') }},
                    coalesce(subscriptions.ends_on, date '9999-12-31')
                )
        end as trial_until
    from subscriptions
    inner join billing_periods
        on
            subscriptions.starts_on < billing_periods.billing_period_end
            and (
                subscriptions.ends_on is null
                or subscriptions.ends_on > billing_periods.billing_period_start
            )
    inner join plans
        on subscriptions.plan_id = plans.plan_id
    inner join customers
        on subscriptions.customer_id = customers.customer_id
    inner join currencies
        on customers.currency = currencies.currency
    {#- At most one such row is in force per period (a rate-card check). #}
    left join subscription_overrides as plan_override
        on
            subscriptions.subscription_id = plan_override.subscription_id
            and plan_override.charge_id is null
            and {{ falls_within(
                'billing_periods.billing_period_start',
                "coalesce(plan_override.starts_on, date '1900-01-01')",
                'plan_override.ends_on'
            ) }}

),

trial_days_counted as (

    {#- least() skips nulls in DuckDB, so a subscription without a trial is said so first. #}
    select
        *,
        case
            when trial_until is null then 0
            else greatest(datediff('day', active_from, least(trial_until, active_until)), 0)
        end as trial_days_in_period
    from subscription_periods

),

paid_days_counted as (

    select
        *,
        active_days - trial_days_in_period as paid_days
    from trial_days_counted

),

prorated as (

    {# Base fee and commitment are prorated by paid days / days in the month (D16, D82). #}
    select
        *,
        {{ divide_and_round('active_days', 'days_in_period', '9', "'half_up'") }}
            as active_fraction,
        {{ divide_and_round('paid_days', 'days_in_period', '9', "'half_up'") }}
            as paid_fraction,
        {{ round_money(
            divide_and_round('base_fee * paid_days', 'days_in_period', '9', "'half_up'"),
            'minor_units'
        ) }} as base_fee_amount,
        {{ round_money(
            divide_and_round(
                'minimum_commitment * paid_days', 'days_in_period', '9', "'half_up'"
            ),
            'minor_units'
        ) }} as commitment_amount
    from paid_days_counted

)

select * from prorated
