{#
    Every metered event matched to the subscription active at its time and to the charge that
    prices it: the charge for its dimension value, or the plan's default charge for the meter
    when no charge of the plan claims that value. One row per event x meter x subscription
    charge. Events of customers without an active subscription, or of meters no charge of
    their plan prices, have no row: reconciliation reports them as unpriced.
#}
with

events_metered as (

    select * from {{ ref('int_events_metered') }}

),

subscriptions as (

    select * from {{ ref('subscriptions') }}

),

plan_charges as (

    select * from {{ ref('plan_charges') }}

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

events_priced as (

    select
        ---------- ids
        events_metered.event_id,
        events_metered.customer_id,
        events_metered.event_type,
        subscriptions.subscription_id,
        plan_charges.charge_id,
        events_metered.meter_id,
        events_metered.aggregation,
        events_metered.file_id,
        events_metered.reversed_by_event_id,
        events_metered.reversal_file_id,
        ---------- numerics
        events_metered.value_number,
        events_metered.value_text,
        ---------- timestamps
        events_metered.event_at,
        events_metered.event_date,
        events_metered.billing_period_start
    from events_metered
    inner join subscriptions
        on
            events_metered.customer_id = subscriptions.customer_id
            and {{ falls_within(
                'events_metered.event_date', 'subscriptions.starts_on', 'subscriptions.ends_on'
            ) }}
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

)

select * from events_priced
