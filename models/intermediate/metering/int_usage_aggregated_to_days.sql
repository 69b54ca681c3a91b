{#
    Usage per customer x UTC day x meter x dimension value, with each meter's aggregation.

    Incremental (DECISIONLOG D61): a build recomputes only the customer days a batch
    touched, each from all of its events: the days of the routed rows written in batches
    it has not taken (every copy of a changed id, so the day an event leaves as well as the
    day it comes to) and the days of the metered rows written since (an event a new
    reversal cancels). A touched day with no usage left leaves a row without `meter_id`,
    which `replace_keys` reads as "delete the day".
#}
{{ config(
    materialized='incremental',
    incremental_strategy='replace_keys',
    unique_key=['customer_id', 'event_date'],
    on_schema_change='fail',
    meta={'tombstone_when': 'meter_id is null'}
) }}

{%- set routed_up_to = incremental_watermark('routed_through_batch') %}
{%- if routed_up_to is not none %}
    {%- set days_changed_sql = keys_routed_since(
        routed_up_to, ref('int_events_metered'), 'event_date'
    ) %}
{%- endif %}

with
{%- if routed_up_to is not none %}

days_changed as (

    {{ days_changed_sql }}

),
{%- endif %}

routed_through as (

    {{ routed_through_batch() }}

),

events_metered as (

    select * from {{ ref('int_events_metered') }}
    where reversed_by_event_id is null
    {%- if routed_up_to is not none %}
        and {{ within_changed_keys('days_changed', days_changed_sql, 'event_date') }}
    {%- endif %}

),

usage_per_day as (

    {{ aggregate_meters(
        'events_metered',
        ['customer_id', 'event_date', 'billing_period_start', 'meter_id', 'dimension_value']
    ) }}

),

usage_per_day_with_batches as (

    select
        usage_per_day.*,
        ---------- batches (DECISIONLOG D61)
        routed_through.routed_through_batch
    from usage_per_day
    cross join routed_through
    {%- if routed_up_to is not none %}
        union all by name
        {# The touched days with no usage left: deleted by the replace_keys strategy. #}
        {{ tombstones('days_changed', 'usage_per_day', ['customer_id', 'event_date']) }}
    {%- endif %}

)

select * from usage_per_day_with_batches
