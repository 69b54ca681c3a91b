{#
    Whether a day falls inside a `[starts_on, ends_on)` range of the seeds (architecture §4): the
    end date is exclusive and a blank end date leaves the range open.
#}
{% macro falls_within(day, starts_on, ends_on) -%}
    {{ day }} >= {{ starts_on }} and ({{ ends_on }} is null or {{ day }} < {{ ends_on }})
{%- endmacro %}

{#
    The day `days` days after `day` (a date; `days` an integer expression). Engine-specific,
    so behind adapter.dispatch: DuckDB adds an integer to a date, Spark has date_add.
#}
{% macro add_days(day, days) -%}
    {{ return(adapter.dispatch('add_days', 'billing')(day, days)) }}
{%- endmacro %}

{% macro default__add_days(day, days) -%}
    cast({{ day }} + cast({{ days }} as integer) as date)
{%- endmacro %}
