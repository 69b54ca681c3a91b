{#
    Usage per charge: priced events (int_events_priced) aggregated with their meter's
    aggregation per scenario x subscription x billing period x charge. Two scenarios:
    `current` counts every accepted, unreversed event; for periods already billed on a
    finalized invoice, `billed` counts only what that invoice saw (events and reversals
    landed up to its file watermark). int_charges_metered_to_periods rates both.

    Incremental (DECISIONLOG D64): a build recomputes only the customer periods a batch
    touched, each from all of its priced events: the periods of the routed rows written in
    batches it has not taken and of the priced rows written since (keys_routed_since),
    and the periods whose finalized invoice's file watermark is not the one the stored
    `billed` rows were counted up to (a finalization, a void, a late adjustment's invoice).
    When what matches events to charges changed (`pricing_rules_hash`), every period is
    recomputed. A touched period with no usage left leaves a row without `charge_id`, which
    `replace_keys` reads as "delete the period".
#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['customer_id', 'billing_period_start'],
    on_schema_change='fail',
    meta={'tombstone_when': 'charge_id is null'}
) }}

{%- set routed_up_to = incremental_watermark('routed_through_batch') %}
{%- if routed_up_to is not none %}
    {%- set matched_as_stored = single_value(
        'select (select max(pricing_rules_hash) from ' ~ this ~ ') is not distinct from ('
        ~ pricing_rules_hash() ~ ')'
    ) %}
    {#- The matching rules changed: every batch counts as not taken, every period is redone. -#}
    {%- set routed_up_to = routed_up_to if matched_as_stored else 0 %}
    {%- set periods_changed_sql %}
    {{ keys_routed_since(routed_up_to, ref('int_events_priced'), 'billing_period_start') }}
    union
    {{ billed_watermarks_moved('select * from ' ~ this ~ " where scenario = 'billed'") }}
    {%- endset %}
{%- endif %}

with
{%- if routed_up_to is not none %}

periods_changed as (

    {{ periods_changed_sql }}

),
{%- endif %}

routed_through as (

    {{ routed_through_batch() }}

),

pricing_rules as (

    {{ pricing_rules_hash() }}

),

events_priced as (

    select * from {{ ref('int_events_priced') }}
    {%- if routed_up_to is not none %}
        where
            {{ within_changed_keys('periods_changed', periods_changed_sql, 'billing_period_start') }}
    {%- endif %}

),

periods_billed as (

    select * from {{ ref('int_invoice_periods_billed') }}

),

events_in_scenarios as (

    select
        *,
        'current' as scenario,
        cast(null as bigint) as billed_through_file_id
    from events_priced
    where reversed_by_event_id is null
    union all
    select
        events_priced.*,
        'billed' as scenario,
        periods_billed.billed_through_file_id
    from events_priced
    inner join periods_billed
        on
            events_priced.customer_id = periods_billed.customer_id
            and events_priced.billing_period_start = periods_billed.billing_period_start
    where
        events_priced.file_id <= periods_billed.billed_through_file_id
        and (
            events_priced.reversed_by_event_id is null
            or events_priced.reversal_file_id > periods_billed.billed_through_file_id
        )

),

usage_per_charge as (

    {{ aggregate_meters(
        'events_in_scenarios',
        [
            'scenario', 'customer_id', 'subscription_id', 'billing_period_start', 'charge_id',
            'billed_through_file_id'
        ]
    ) }}

),

usage_per_charge_with_batches as (

    select
        usage_per_charge.*,
        ---------- batches (DECISIONLOG D64)
        routed_through.routed_through_batch,
        pricing_rules.pricing_rules_hash
    from usage_per_charge
    cross join routed_through
    cross join pricing_rules
    {%- if routed_up_to is not none %}
        union all by name
        {# The touched periods with no usage left: deleted by the replace_keys strategy. #}
        {{ tombstones('periods_changed', 'usage_per_charge', ['customer_id', 'billing_period_start']) }}
    {%- endif %}

)

select * from usage_per_charge_with_batches
