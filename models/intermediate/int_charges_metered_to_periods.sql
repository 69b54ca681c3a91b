{#
    The quantity of every charge of every active subscription in every period: events are
    matched to the subscription active at their time and to the charge that prices their
    dimension value (or the plan's default charge for the meter), then aggregated with the
    meter's aggregation and transformed per DESIGN 6.2. Charges without usage get quantity 0,
    so every charge of the rate card reaches the invoice.

    Two scenarios: `current` counts every accepted, unreversed event; for periods already
    billed on a finalized invoice, `billed` counts only what that invoice saw (events and
    reversals landed up to its file watermark). Their difference is the late-usage
    adjustment (DESIGN 6.5), both rated with today's rate card.
#}
with

events_metered as (

    select * from {{ ref('int_events_metered') }}

),

periods_billed as (

    select * from {{ ref('int_invoice_periods_billed') }}

),

events_in_scenarios as (

    select
        *,
        'current' as scenario
    from events_metered
    where reversed_by_event_id is null
    union all
    select
        events_metered.*,
        'billed' as scenario
    from events_metered
    inner join periods_billed
        on
            events_metered.customer_id = periods_billed.customer_id
            and events_metered.billing_period_start = periods_billed.billing_period_start
    where
        events_metered.file_id <= periods_billed.billed_through_file_id
        and (
            events_metered.reversed_by_event_id is null
            or events_metered.reversal_file_id > periods_billed.billed_through_file_id
        )

),

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

subscriptions as (

    select * from {{ ref('subscriptions') }}

),

plan_charges as (

    select * from {{ ref('plan_charges') }}

),

meters as (

    select * from {{ ref('meters') }}

),

dimension_claims as (

    {# Dimension values a plan prices explicitly; the rest of the meter goes to the default. #}
    select distinct
        plan_id,
        meter_id,
        dimension_value
    from plan_charges
    where dimension_value is not null

),

events_charged as (

    select
        ---------- ids
        events_metered.event_id,
        events_metered.scenario,
        subscriptions.subscription_id,
        plan_charges.charge_id,
        events_metered.meter_id,
        events_metered.aggregation,
        ---------- numerics
        events_metered.value_number,
        events_metered.value_text,
        ---------- timestamps
        events_metered.event_at,
        events_metered.billing_period_start
    from events_in_scenarios as events_metered
    inner join subscriptions
        on
            events_metered.customer_id = subscriptions.customer_id
            and events_metered.event_date >= subscriptions.starts_on
            and (
                subscriptions.ends_on is null
                or events_metered.event_date < subscriptions.ends_on
            )
    inner join plan_charges
        on
            subscriptions.plan_id = plan_charges.plan_id
            and events_metered.meter_id = plan_charges.meter_id
    left join dimension_claims
        on
            plan_charges.plan_id = dimension_claims.plan_id
            and events_metered.meter_id = dimension_claims.meter_id
            and events_metered.dimension_value = dimension_claims.dimension_value
    where
        plan_charges.dimension_value = events_metered.dimension_value
        or (plan_charges.dimension_value is null and dimension_claims.plan_id is null)

),

usage_per_charge as (

    {{ aggregate_meters(
        'events_charged',
        ['scenario', 'subscription_id', 'billing_period_start', 'charge_id']
    ) }}

),

scenarios as (

    select
        subscription_periods.subscription_period_id,
        'current' as scenario
    from subscription_periods
    union all
    select
        subscription_periods.subscription_period_id,
        'billed' as scenario
    from subscription_periods
    inner join periods_billed
        on
            subscription_periods.customer_id = periods_billed.customer_id
            and subscription_periods.billing_period_start = periods_billed.billing_period_start

),

charges_per_period as (

    select
        ---------- ids
        subscription_periods.subscription_period_id || ':' || plan_charges.charge_id
        || ':' || scenarios.scenario as charge_period_id,
        scenarios.scenario,
        subscription_periods.subscription_period_id,
        subscription_periods.subscription_id,
        subscription_periods.customer_id,
        plan_charges.charge_id,
        plan_charges.meter_id,
        plan_charges.dimension_value,
        plan_charges.charge_model,
        plan_charges.display_name,
        meters.unit_name,
        plan_charges.quantity_rounding,
        ---------- numerics
        plan_charges.unit_price,
        plan_charges.package_size,
        plan_charges.free_units,
        plan_charges.quantity_divisor,
        plan_charges.quantity_precision,
        plan_charges.min_amount,
        plan_charges.max_amount,
        {{ round_money('plan_charges.max_amount', 'subscription_periods.minor_units') }}
            as max_amount_rounded,
        {# The per-charge minimum is prorated like the base fee (DESIGN 6.4 step 3). #}
        {{ round_money(
            divide_and_round(
                'plan_charges.min_amount * subscription_periods.active_days',
                'subscription_periods.days_in_period', '9', "'half_up'"
            ),
            'subscription_periods.minor_units'
        ) }} as min_amount_prorated,
        coalesce(usage_per_charge.aggregate_quantity, 0) as aggregate_quantity,
        coalesce(usage_per_charge.event_count, 0) as event_count,
        coalesce(usage_per_charge.aggregate_quantity, 0) < 0 as has_negative_quantity,
        ---------- dates
        subscription_periods.billing_period_start
    from subscription_periods
    inner join scenarios
        on subscription_periods.subscription_period_id = scenarios.subscription_period_id
    inner join plan_charges
        on subscription_periods.plan_id = plan_charges.plan_id
    inner join meters
        on plan_charges.meter_id = meters.meter_id
    left join usage_per_charge
        on
            scenarios.scenario = usage_per_charge.scenario
            and subscription_periods.subscription_id = usage_per_charge.subscription_id
            and subscription_periods.billing_period_start = usage_per_charge.billing_period_start
            and plan_charges.charge_id = usage_per_charge.charge_id

),

quantities_transformed as (

    select
        *,
        {# A negative period quantity is billed as zero and reported (DESIGN 6.3). #}
        {{ transform_quantity(
            'greatest(aggregate_quantity, 0)',
            'quantity_divisor',
            'quantity_precision',
            'quantity_rounding'
        ) }} as quantity
    from charges_per_period

)

select * from quantities_transformed
