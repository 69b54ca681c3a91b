{#
    Every metered event matched to the subscription active at its time and to the charge that
    prices it: the charge for its dimension value, or the plan's default charge for the meter
    when no charge of the plan claims that value. One row per event x meter x subscription
    charge. Events of customers without an active subscription, of meters no charge of
    their plan prices, or inside a free-usage trial (D82) have no row: reconciliation
    reports them as unpriced.

    Incremental (DECISIONLOG D61): a build recomputes the event ids routing changed in
    batches it has not taken, or every event when the subscriptions or the charges' plan,
    meter and dimension (what matching reads; prices are not read here) changed since the
    stored rows were matched (`pricing_rules_hash`). An id left without a match leaves a
    row without `charge_id`, which `replace_keys` reads as "delete it".
#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key='event_id',
    on_schema_change='fail',
    meta={'tombstone_when': 'charge_id is null'}
) }}

{%- set routed_up_to = incremental_watermark('routed_through_batch') %}
{#- The batch of the rows this build writes: their data tests read them (D68). #}
{%- set written_batch = next_batch_number('written_batch') %}
{%- set rules_changed = routed_up_to is not none and single_value(
    'select (select max(pricing_rules_hash) from ' ~ this ~ ') is distinct from ('
    ~ pricing_rules_hash() ~ ')'
) %}
{%- set only_changed_ids = routed_up_to is not none and not rules_changed %}

with
{%- if only_changed_ids %}

event_ids_changed as (

    {{ event_ids_routed_since(routed_up_to) }}

),
{%- elif routed_up_to is not none %}

event_ids_changed as (

    {# The matching rules changed: every event stored or metered is matched again. #}
    select event_id from {{ this }}
    union
    select event_id from {{ ref('int_events_metered') }}

),
{%- endif %}

routed_through as (

    {{ routed_through_batch() }}

),

pricing_rules as (

    {{ pricing_rules_hash() }}

),

events_metered as (

    select * from {{ ref('int_events_metered') }}
    {%- if only_changed_ids %}
        where event_id in (select event_ids_changed.event_id from event_ids_changed)
    {%- endif %}

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
            {#- A free-usage trial's events are metered, never priced (D82). #}
            and not (
                coalesce(subscriptions.trial_usage, 'billed') = 'free'
                and events_metered.event_date
                < {{ add_days('subscriptions.starts_on', 'subscriptions.trial_days') }}
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

events_priced_with_batches as (

    select
        events_priced.*,
        ---------- batches (DECISIONLOG D61)
        routed_through.routed_through_batch,
        pricing_rules.pricing_rules_hash
    from events_priced
    cross join routed_through
    cross join pricing_rules
    {%- if routed_up_to is not none %}
        union all by name
        {# The changed ids with no match left: deleted by the replace_keys strategy. #}
        select
            event_ids_changed.event_id,
            routed_through.routed_through_batch,
            pricing_rules.pricing_rules_hash
        from event_ids_changed
        cross join routed_through
        cross join pricing_rules
        where event_ids_changed.event_id not in (select events_priced.event_id from events_priced)
    {%- endif %}

)

select
    events_priced_with_batches.*,
    cast({{ written_batch }} as bigint) as written_batch
from events_priced_with_batches
