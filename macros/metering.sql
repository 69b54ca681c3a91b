{#
    A meter's aggregation over a set of metered events (architecture §6.2), as one query per
    aggregation kind joined by `union all`. Each branch reads only its meters' rows, so a
    month's max, distinct count, latest or p95 is computed from events, never from days.
    - count: events; sum / max / min: of value_number; unique_count: distinct value_text;
    - latest: the value of the last event by timestamp (ties: the greater event_id);
    - p95: nearest rank, the smallest value with at least 95 % of values at or below it.
#}
{% macro aggregate_meters(relation, group_columns) -%}
    {%- set aggregations = {
        'count': 'count(*)',
        'sum': 'sum(value_number)',
        'max': 'max(value_number)',
        'min': 'min(value_number)',
        'unique_count': 'count(distinct value_text)',
        'latest': 'arg_max(value_number, (event_at, event_id))',
        'p95': 'quantile_disc(value_number, 0.95)',
    } -%}
    {%- for aggregation, expression in aggregations.items() %}
    select
        {{ group_columns | join(',\n        ') }},
        cast({{ expression }} as decimal(38, 9)) as aggregate_quantity,
        count(*) as event_count
    from {{ relation }}
    where aggregation = '{{ aggregation }}'
    group by {{ group_columns | join(', ') }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
{%- endmacro %}
