{#
    The run's "now" as a UTC timestamp (architecture §6.1). Every rule that depends on the clock
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

{#
    Whether an invoice may be finalized by this run: its grace period has passed at `as_of`
    and, when the run is limited to billing periods before `finalize_periods_before`
    (YYYY-MM-DD; orchestration's monthly partition), its period starts before that date.
    An invoice's own grace still decides; the limit only keeps a run for one month from
    finalizing later months.
#}
{% macro is_due_for_finalization(finalizes_at, billing_period_start) -%}
    {%- set limit = var('finalize_periods_before', '') -%}
    {{ finalizes_at }} <= {{ as_of_timestamp() }}
    {%- if limit %}
        and {{ billing_period_start }} < cast('{{ limit }}' as date)
    {%- endif -%}
{%- endmacro %}
