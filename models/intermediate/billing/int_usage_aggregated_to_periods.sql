{#
    Usage per customer x billing period x meter x dimension value, aggregated from events
    (a month's max or distinct count cannot be added up from days).

    Incremental (DECISIONLOG D64): a build recomputes only the customer periods a batch
    touched, each from all of its events: the periods of the routed rows written in batches
    it has not taken (every copy of a changed id, so the period an event leaves as well as
    the one it comes to) and of the metered rows written since (an event a new reversal
    cancels, whatever month the reversal is in). A daily run recomputes the open month and
    leaves the closed ones as they are. A touched period with no usage left leaves a row
    without `meter_id`, which `replace_keys` reads as "delete the period".
#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['customer_id', 'billing_period_start'],
    on_schema_change='fail',
    meta={'tombstone_when': 'meter_id is null'}
) }}

{%- set routed_up_to = incremental_watermark('routed_through_batch') %}
{%- if routed_up_to is not none %}
    {%- set periods_changed_sql = keys_routed_since(
        routed_up_to, ref('int_events_metered'), 'billing_period_start'
    ) %}
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

events_metered as (

    select * from {{ ref('int_events_metered') }}
    where reversed_by_event_id is null
    {%- if routed_up_to is not none %}
        and {{ within_changed_keys('periods_changed', periods_changed_sql, 'billing_period_start') }}
    {%- endif %}

),

usage_per_period as (

    {{ aggregate_meters(
        'events_metered',
        ['customer_id', 'billing_period_start', 'meter_id', 'dimension_value']
    ) }}

),

usage_per_period_with_batches as (

    select
        usage_per_period.*,
        ---------- batches (DECISIONLOG D64)
        routed_through.routed_through_batch
    from usage_per_period
    cross join routed_through
    {%- if routed_up_to is not none %}
        union all by name
        {# The touched periods with no usage left: deleted by the replace_keys strategy. #}
        {{ tombstones('periods_changed', 'usage_per_period', ['customer_id', 'billing_period_start']) }}
    {%- endif %}

)

select * from usage_per_period_with_batches
