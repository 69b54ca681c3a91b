{#
    Whether a day falls inside a `[starts_on, ends_on)` range of the seeds (architecture §4): the
    end date is exclusive and a blank end date leaves the range open.
#}
{% macro falls_within(day, starts_on, ends_on) -%}
    {{ day }} >= {{ starts_on }} and ({{ ends_on }} is null or {{ day }} < {{ ends_on }})
{%- endmacro %}
