{#
    The period tie-out, per customer x billing period x meter (fct_reconciliation_periods): the usage aggregated from
    events equals the usage the period's invoice was rated on, or the difference is
    explained by a listed cause:
    - unpriced: events no invoice prices (no active subscription, no charge of the plan for
      the meter, or a period outside the billed range);
    - late usage: events landed after the period's finalized invoice saw its data, billed as
      adjustments on a later invoice;
    - reversals: events the finalized invoice counted that were reversed afterwards.
    aggregated = invoiced + unpriced + late - reversed_after_invoice; what is left is
    `unexplained_quantity`, and any of it fails. Only additive meters (count, sum) tie out
    this way: a month's max or distinct count is not the sum of its parts.

    Incremental (DECISIONLOG D67): a build recomputes only the customer months a batch
    touched, each from all of its events: the months of the routed rows written in batches
    it has not taken and of the metered and priced rows written since (keys_routed_since),
    and the months whose finalized invoice's file watermark is not the one the stored rows
    were tied out against. When what decides pricing or which periods are invoiced changed
    (`pricing_rules_hash`, `subscription_periods_hash`: a seed edit, a new month), every
    month is recomputed. A touched month with nothing left leaves a row without `meter_id`,
    which `replace_keys` reads as "delete the month".
#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['customer_id', 'billing_period_start'],
    on_schema_change='fail',
    meta={'tombstone_when': 'meter_id is null'}
) }}

{%- set tie_out_rules_sql = (
    '(' ~ pricing_rules_hash() ~ ') || (' ~ subscription_periods_hash() ~ ')'
) %}
{%- set routed_up_to = incremental_watermark('routed_through_batch') %}
{%- if routed_up_to is not none %}
    {%- set tied_out_as_stored = single_value(
        'select (select max(tie_out_rules_hash) from ' ~ this ~ ') is not distinct from ('
        ~ tie_out_rules_sql ~ ')'
    ) %}
    {#- The rules changed: every batch counts as not taken, every month is redone. -#}
    {%- set routed_up_to = routed_up_to if tied_out_as_stored else 0 %}
    {%- set periods_changed_sql %}
    {{ keys_routed_since(routed_up_to, ref('int_events_metered'), 'billing_period_start') }}
    union
    select
        customer_id,
        billing_period_start
    from {{ ref('int_events_priced') }}
    where routed_through_batch > {{ routed_up_to }}
    union
    {{ billed_watermarks_moved('select * from ' ~ this) }}
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

tie_out_rules as (

    select {{ tie_out_rules_sql }} as tie_out_rules_hash

),

events_metered as (

    select
        *,
        case when aggregation = 'count' then 1 else value_number end as usage_value
    from {{ ref('int_events_metered') }}
    where aggregation in ('count', 'sum')
    {%- if routed_up_to is not none %}
        and {{ within_changed_keys('periods_changed', periods_changed_sql, 'billing_period_start') }}
    {%- endif %}

),

events_priced as (

    select
        *,
        case when aggregation = 'count' then 1 else value_number end as usage_value
    from {{ ref('int_events_priced') }}
    where aggregation in ('count', 'sum')
    {%- if routed_up_to is not none %}
        and {{ within_changed_keys('periods_changed', periods_changed_sql, 'billing_period_start') }}
    {%- endif %}

),

usage_per_period as (

    select * from {{ ref('int_usage_aggregated_to_periods') }}

),

charges_metered as (

    select * from {{ ref('int_charges_metered_to_periods') }}

),

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

periods_billed as (

    select * from {{ ref('int_invoice_periods_billed') }}

),

meters as (

    select * from {{ ref('meters') }}
    where aggregation in ('count', 'sum')

),

aggregated as (

    select
        usage_per_period.customer_id,
        usage_per_period.billing_period_start,
        usage_per_period.meter_id,
        sum(usage_per_period.aggregate_quantity) as aggregated_quantity
    from usage_per_period
    inner join meters
        on usage_per_period.meter_id = meters.meter_id
    group by 1, 2, 3

),

invoiced_scenario as (

    {# What the period's invoice was rated on: what it saw if finalized, else today's usage. #}
    select
        charges_metered.customer_id,
        charges_metered.billing_period_start,
        charges_metered.meter_id,
        sum(charges_metered.aggregate_quantity) as invoiced_quantity
    from charges_metered
    inner join meters
        on charges_metered.meter_id = meters.meter_id
    left join periods_billed
        on
            charges_metered.customer_id = periods_billed.customer_id
            and charges_metered.billing_period_start = periods_billed.billing_period_start
    where
        charges_metered.scenario
        = case when periods_billed.customer_id is null then 'current' else 'billed' end
    group by 1, 2, 3

),

events_invoiced as (

    select
        events_priced.*,
        periods_billed.billed_through_file_id
    from events_priced
    inner join subscription_periods
        on
            events_priced.subscription_id = subscription_periods.subscription_id
            and events_priced.billing_period_start = subscription_periods.billing_period_start
    left join periods_billed
        on
            events_priced.customer_id = periods_billed.customer_id
            and events_priced.billing_period_start = periods_billed.billing_period_start

),

causes as (

    select
        customer_id,
        billing_period_start,
        meter_id,
        sum(usage_value) filter (
            where reversed_by_event_id is null and file_id > billed_through_file_id
        ) as late_usage_quantity,
        sum(usage_value) filter (
            where file_id <= billed_through_file_id and reversal_file_id > billed_through_file_id
        ) as reversed_after_invoice_quantity
    from events_invoiced
    group by 1, 2, 3

),

unpriced as (

    select
        events_metered.customer_id,
        events_metered.billing_period_start,
        events_metered.meter_id,
        sum(events_metered.usage_value) as unpriced_quantity,
        count(*) as unpriced_event_count
    from events_metered
    anti join events_invoiced
        on
            events_metered.event_id = events_invoiced.event_id
            and events_metered.meter_id = events_invoiced.meter_id
    where events_metered.reversed_by_event_id is null
    group by 1, 2, 3

),

keys as (

    select * from (
        select
            customer_id,
            billing_period_start,
            meter_id
        from aggregated
        union
        select
            customer_id,
            billing_period_start,
            meter_id
        from invoiced_scenario
    ) as keys_of_all_periods
    {%- if routed_up_to is not none %}
        where (customer_id, billing_period_start) in (
            select
                periods_changed.customer_id,
                periods_changed.billing_period_start
            from periods_changed
        )
    {%- endif %}

),

tie_out as (

    select
        keys.customer_id,
        keys.billing_period_start,
        keys.meter_id,
        periods_billed.customer_id is not null as is_finalized,
        coalesce(aggregated.aggregated_quantity, 0) as aggregated_quantity,
        coalesce(invoiced_scenario.invoiced_quantity, 0) as invoiced_quantity,
        coalesce(unpriced.unpriced_quantity, 0) as unpriced_quantity,
        coalesce(unpriced.unpriced_event_count, 0) as unpriced_event_count,
        coalesce(causes.late_usage_quantity, 0) as late_usage_quantity,
        coalesce(causes.reversed_after_invoice_quantity, 0) as reversed_after_invoice_quantity,
        periods_billed.billed_through_file_id
    from keys
    left join aggregated
        on
            keys.customer_id = aggregated.customer_id
            and keys.billing_period_start = aggregated.billing_period_start
            and keys.meter_id = aggregated.meter_id
    left join invoiced_scenario
        on
            keys.customer_id = invoiced_scenario.customer_id
            and keys.billing_period_start = invoiced_scenario.billing_period_start
            and keys.meter_id = invoiced_scenario.meter_id
    left join unpriced
        on
            keys.customer_id = unpriced.customer_id
            and keys.billing_period_start = unpriced.billing_period_start
            and keys.meter_id = unpriced.meter_id
    left join causes
        on
            keys.customer_id = causes.customer_id
            and keys.billing_period_start = causes.billing_period_start
            and keys.meter_id = causes.meter_id
    left join periods_billed
        on
            keys.customer_id = periods_billed.customer_id
            and keys.billing_period_start = periods_billed.billing_period_start

),

period_reconciliation as (

    select
        ---------- ids
        customer_id || ':' || strftime(billing_period_start, '%Y-%m') || ':' || meter_id
            as period_reconciliation_id,
        customer_id,
        meter_id,
        ---------- status
        case
            when
                aggregated_quantity - invoiced_quantity - unpriced_quantity
                - late_usage_quantity + reversed_after_invoice_quantity != 0
                then 'fail'
            else 'ok'
        end as status,
        nullif(concat_ws(
            '; ',
            case when unpriced_quantity != 0 then 'unpriced usage' end,
            case when late_usage_quantity != 0 then 'late usage (adjustment)' end,
            case
                when reversed_after_invoice_quantity != 0 then 'reversed after invoice (adjustment)'
            end
        ), '') as explained_by,
        is_finalized,
        ---------- numerics
        aggregated_quantity,
        invoiced_quantity,
        unpriced_quantity,
        unpriced_event_count,
        late_usage_quantity,
        reversed_after_invoice_quantity,
        aggregated_quantity - invoiced_quantity - unpriced_quantity
        - late_usage_quantity + reversed_after_invoice_quantity as unexplained_quantity,
        ---------- dates
        billing_period_start,
        ---------- batches (DECISIONLOG D67)
        billed_through_file_id,
        routed_through.routed_through_batch,
        tie_out_rules.tie_out_rules_hash
    from tie_out
    cross join routed_through
    cross join tie_out_rules

),

period_reconciliation_with_tombstones as (

    select * from period_reconciliation
    {%- if routed_up_to is not none %}
        union all by name
        {# The touched months with nothing left: deleted by the replace_keys strategy. #}
        {{ tombstones('periods_changed', 'period_reconciliation', ['customer_id', 'billing_period_start']) }}
    {%- endif %}

)

select * from period_reconciliation_with_tombstones
