{#
    Every routed row counted per reconciliation day x customer x event type, and every
    accepted usage event by what billing made of it: the counts fct_reconciliation_daily
    compares (architecture §5). A row's day is the event's own UTC day, else the day its file
    was loaded; a missing customer or event type is '(missing)'. Rows of a withdrawn file
    count as never received (DECISIONLOG D38).

    Incremental (DECISIONLOG D63): a build recomputes only the keys a batch touched, each from
    all of its rows: the keys of the routed rows written in batches it has not taken and of
    the usage events rewritten since (the event a new reversal cancels). When what decides
    "billed" or "no subscription" changed (the subscriptions or plan charges,
    `pricing_rules_hash`, or the subscription periods that have an invoice, which a new
    month adds) every key is recomputed. A touched key with no row left (its file was
    withdrawn) leaves a row without `received_count`, which `replace_keys` deletes.
#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['reconciliation_date', 'customer_id', 'event_type'],
    on_schema_change='fail',
    meta={'tombstone_when': 'received_count is null'}
) }}

{%- set routed_up_to = incremental_watermark('routed_through_batch') %}
{%- if routed_up_to is not none %}
    {%- set classified_as_stored = single_value(
        'select (select max(pricing_rules_hash) || max(subscription_periods_hash) from '
        ~ this ~ ') is not distinct from ((' ~ pricing_rules_hash() ~ ') || ('
        ~ subscription_periods_hash() ~ '))'
    ) %}
    {#- The rules changed: every batch counts as not taken, so every key is recomputed. -#}
    {%- set routed_up_to = routed_up_to if classified_as_stored else 0 %}
{%- endif %}

with

routed_events as (

    select
        *,
        coalesce(event_date, cast(loaded_at as date)) as reconciliation_date,
        coalesce(customer_id, '(missing)') as counted_customer_id,
        coalesce(event_type, '(missing)') as counted_event_type
    from {{ ref('stg_events__routed_events') }}

),

usage_events as (

    select * from {{ ref('stg_events__usage_events') }}

),
{%- if routed_up_to is not none %}

keys_changed as (

    select
        reconciliation_date,
        counted_customer_id as customer_id,
        counted_event_type as event_type
    from routed_events
    where routed_batch > {{ routed_up_to }}
    union
    select
        event_date,
        customer_id,
        event_type
    from usage_events
    where routed_through_batch > {{ routed_up_to }}

),
{%- endif %}

routed_in_scope as (

    select routed_events.*
    from routed_events
    {%- if routed_up_to is not none %}
        inner join keys_changed
            on
                routed_events.reconciliation_date = keys_changed.reconciliation_date
                and routed_events.counted_customer_id = keys_changed.customer_id
                and routed_events.counted_event_type = keys_changed.event_type
    {%- endif %}
    where routed_events.event_status != 'withdrawn'

),

usage_in_scope as (

    select usage_events.*
    from usage_events
    {%- if routed_up_to is not none %}
        inner join keys_changed
            on
                usage_events.event_date = keys_changed.reconciliation_date
                and usage_events.customer_id = keys_changed.customer_id
                and usage_events.event_type = keys_changed.event_type
    {%- endif %}

),

events_priced as (

    select * from {{ ref('int_events_priced') }}
    {%- if routed_up_to is not none %}
        where event_id in (select usage_in_scope.event_id from usage_in_scope)
    {%- endif %}

),

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

subscriptions as (

    select * from {{ ref('subscriptions') }}

),

routed_through as (

    {{ routed_through_batch() }}

),

pricing_rules as (

    {{ pricing_rules_hash() }}

),

periods_invoiced as (

    {{ subscription_periods_hash() }}

),

events_received as (

    select
        reconciliation_date,
        counted_customer_id as customer_id,
        counted_event_type as event_type,
        count(*) as received_count,
        count(*) filter (where event_status = 'accepted') as accepted_count,
        count(*) filter (where event_status = 'duplicate') as duplicate_count,
        count(*) filter (where event_status = 'quarantined') as quarantined_count,
        count(*) filter (where event_date is null) as undated_count,
        count(*) filter (
            where event_status = 'accepted' and reverses_event_id is not null
        ) as reversal_count
    from routed_in_scope
    group by 1, 2, 3

),

events_invoiced as (

    {# Priced in a subscription period that has an invoice (draft or finalized). #}
    select distinct events_priced.event_id
    from events_priced
    inner join subscription_periods
        on
            events_priced.subscription_id = subscription_periods.subscription_id
            and events_priced.billing_period_start = subscription_periods.billing_period_start

),

events_subscribed as (

    select distinct usage_in_scope.event_id
    from usage_in_scope
    inner join subscriptions
        on
            usage_in_scope.customer_id = subscriptions.customer_id
            and {{ falls_within(
                'usage_in_scope.event_date', 'subscriptions.starts_on', 'subscriptions.ends_on'
            ) }}

),

usage_classified as (

    select
        usage_in_scope.event_date as reconciliation_date,
        usage_in_scope.customer_id,
        usage_in_scope.event_type,
        case
            when usage_in_scope.reversed_by_event_id is not null then 'reversed'
            when events_invoiced.event_id is not null then 'billed'
            when events_subscribed.event_id is null then 'no_subscription'
            else 'not_invoiced'
        end as billing_outcome
    from usage_in_scope
    left join events_invoiced
        on usage_in_scope.event_id = events_invoiced.event_id
    left join events_subscribed
        on usage_in_scope.event_id = events_subscribed.event_id

),

usage_billed as (

    select
        reconciliation_date,
        customer_id,
        event_type,
        count(*) filter (where billing_outcome = 'billed') as billed_count,
        count(*) filter (where billing_outcome = 'reversed') as reversed_count,
        count(*) filter (where billing_outcome = 'no_subscription') as no_subscription_count,
        count(*) filter (where billing_outcome = 'not_invoiced') as not_invoiced_count
    from usage_classified
    group by 1, 2, 3

),

events_counted as (

    select
        ---------- ids
        events_received.customer_id,
        events_received.event_type,
        ---------- counts
        events_received.received_count,
        events_received.accepted_count,
        events_received.duplicate_count,
        events_received.quarantined_count,
        events_received.undated_count,
        events_received.reversal_count,
        coalesce(usage_billed.billed_count, 0) as billed_count,
        coalesce(usage_billed.reversed_count, 0) as reversed_count,
        coalesce(usage_billed.no_subscription_count, 0) as no_subscription_count,
        coalesce(usage_billed.not_invoiced_count, 0) as not_invoiced_count,
        ---------- dates
        events_received.reconciliation_date
    from events_received
    left join usage_billed
        on
            events_received.reconciliation_date = usage_billed.reconciliation_date
            and events_received.customer_id = usage_billed.customer_id
            and events_received.event_type = usage_billed.event_type

),

events_counted_with_batches as (

    select
        events_counted.*,
        ---------- batches (DECISIONLOG D63)
        routed_through.routed_through_batch,
        pricing_rules.pricing_rules_hash,
        periods_invoiced.subscription_periods_hash
    from events_counted
    cross join routed_through
    cross join pricing_rules
    cross join periods_invoiced
    {%- if routed_up_to is not none %}
        union all by name
        {# The touched keys with no row left: deleted by the replace_keys strategy. #}
        {{ tombstones('keys_changed', 'events_counted', ['reconciliation_date', 'customer_id', 'event_type']) }}
    {%- endif %}

)

select * from events_counted_with_batches
