{#
    The run's "now" as a UTC timestamp (DESIGN 6.1). Every rule that depends on the clock
    (future timestamps, finalization) reads it from here, so a run with the same `as_of`
    gives the same answer whenever it is executed.
#}
{% macro as_of_timestamp() -%}
    {%- set as_of = var('as_of', '') -%}
    {%- if as_of -%}
        timezone('UTC', cast('{{ as_of }}' as timestamptz))
    {%- else -%}
        timezone('UTC', current_timestamp)
    {%- endif -%}
{%- endmacro %}
