{#
    Usage per charge: priced events (int_events_priced) aggregated with their meter's
    aggregation per scenario x subscription x billing period x charge. Two scenarios:
    `current` counts every accepted, unreversed event; for periods already billed on a
    finalized invoice, `billed` counts only what that invoice saw (events and reversals
    landed up to its file watermark). int_charges_metered_to_periods rates both. A
    percentage charge is rated here, event by event, into `percentage_fee` (D76): its
    per-event fees cannot be computed from a period total.

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

percentage_charges as (

    select * from {{ ref('plan_charges') }}
    where charge_model = 'percentage'

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

percentage_events_in_order as (

    {# A percentage charge is rated event by event (D76): each event's place in its period
       and the period's value up to it decide its share of the free allowance. Only the
       events of percentage charges are read here, in the periods this build recounts, and
       only those that moved value: a refund or a zero event pays no fee and takes no free
       event. #}
    select
        events_in_scenarios.scenario,
        events_in_scenarios.subscription_id,
        events_in_scenarios.billing_period_start,
        events_in_scenarios.charge_id,
        events_in_scenarios.value_number as fee_value,
        row_number() over period_in_order as event_position,
        sum(events_in_scenarios.value_number) over (
            period_in_order rows between unbounded preceding and current row
        ) as running_total
    from events_in_scenarios
    inner join percentage_charges
        on events_in_scenarios.charge_id = percentage_charges.charge_id
    where events_in_scenarios.value_number > 0
    window period_in_order as (
        partition by
            events_in_scenarios.scenario,
            events_in_scenarios.subscription_id,
            events_in_scenarios.billing_period_start,
            events_in_scenarios.charge_id
        order by events_in_scenarios.event_at, events_in_scenarios.event_id
    )

),

percentage_fees as (

    {# Past the supported period quantity (10^15) the fees are not summed, so they cannot
       overflow: the charge is flagged and its customer's invoices held (D33). #}
    select
        percentage_events_in_order.scenario,
        percentage_events_in_order.subscription_id,
        percentage_events_in_order.billing_period_start,
        percentage_events_in_order.charge_id,
        max(percentage_events_in_order.running_total) >= {{ max_quantity() }}
            as is_fee_out_of_range,
        sum({{ percentage_event_fee(
            'percentage_events_in_order.fee_value',
            'percentage_events_in_order.event_position',
            'percentage_events_in_order.running_total',
            'percentage_charges.rate_percent',
            'percentage_charges.fixed_fee_per_event',
            'percentage_charges.free_events',
            'percentage_charges.free_amount',
            'percentage_charges.min_fee_per_event',
            'percentage_charges.max_fee_per_event'
        ) }}) filter (
            where percentage_events_in_order.running_total < {{ max_quantity() }}
        ) as percentage_fee
    from percentage_events_in_order
    inner join percentage_charges
        on percentage_events_in_order.charge_id = percentage_charges.charge_id
    group by
        percentage_events_in_order.scenario,
        percentage_events_in_order.subscription_id,
        percentage_events_in_order.billing_period_start,
        percentage_events_in_order.charge_id

),

usage_per_charge_with_batches as (

    select
        usage_per_charge.*,
        ---------- percentage charges (D76)
        percentage_fees.percentage_fee,
        percentage_fees.is_fee_out_of_range,
        ---------- batches (DECISIONLOG D64)
        routed_through.routed_through_batch,
        pricing_rules.pricing_rules_hash
    from usage_per_charge
    left join percentage_fees
        on
            usage_per_charge.scenario = percentage_fees.scenario
            and usage_per_charge.subscription_id = percentage_fees.subscription_id
            and usage_per_charge.billing_period_start = percentage_fees.billing_period_start
            and usage_per_charge.charge_id = percentage_fees.charge_id
    cross join routed_through
    cross join pricing_rules
    {%- if routed_up_to is not none %}
        union all by name
        {# The touched periods with no usage left: deleted by the replace_keys strategy. #}
        {{ tombstones('periods_changed', 'usage_per_charge', ['customer_id', 'billing_period_start']) }}
    {%- endif %}

)

select * from usage_per_charge_with_batches
