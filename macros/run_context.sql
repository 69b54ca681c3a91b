{#
    The run's context: its "now" (`as_of`), its build id and its finalization limit
    (architecture §6.1). `billing build` and every Dagster dbt step write them to the one-row
    table control.run_context just before dbt runs (billing/warehouse/run_context.py), never as
    `--vars`: dbt re-parses the whole project whenever its vars change (DECISIONLOG D52).
    A var of the same name, set on the dbt command line or in a unit test's overrides,
    still wins, so a bare `dbt build --vars '{as_of: ...}'` works as before.
#}
{% macro run_context_value(name) -%}
    (select run_context.{{ name }} from {{ source('control', 'run_context') }} as run_context)
{%- endmacro %}

{#
    The run's "now" as a naive UTC timestamp. Every rule that depends on the clock (future
    timestamps, finalization) reads it from here, so a run with the same `as_of` gives the
    same answer whenever it is executed; without any context it is the current time.
#}
{% macro as_of_timestamp() -%}
    {%- set as_of = var('as_of', '') -%}
    {%- if as_of -%}
        timezone('UTC', cast('{{ as_of }}' as timestamptz))
    {%- else -%}
        coalesce({{ run_context_value('as_of') }}, timezone('UTC', current_timestamp))
    {%- endif -%}
{%- endmacro %}

{#
    The id of the run computing the rows finalization would take: the ledger appends only
    rows of its own run's id (billing/warehouse/ledger.py). Blank for a run that finalizes
    nothing (a partial build).
#}
{% macro run_build_id() -%}
    {%- set build_id = var('build_id', '') -%}
    {%- if build_id -%}
        '{{ build_id }}'
    {%- else -%}
        coalesce({{ run_context_value('build_id') }}, '')
    {%- endif -%}
{%- endmacro %}

{#
    Whether an invoice may be finalized by this run: its grace period has passed at `as_of`
    and, when the run is limited to billing periods before `finalize_periods_before`
    (orchestration's monthly partition end), its period starts before that date. An
    invoice's own grace still decides; the limit only keeps a run for one month from
    finalizing later months.
#}
{% macro is_due_for_finalization(finalizes_at, billing_period_start) -%}
    {%- set limit = var('finalize_periods_before', '') -%}
    {{ finalizes_at }} <= {{ as_of_timestamp() }}
    and {{ billing_period_start }} < coalesce(
        {%- if limit %}
            cast('{{ limit }}' as date)
        {%- else %}
            {{ run_context_value('finalize_periods_before') }}
        {%- endif %},
        date '9999-12-31'
    )
{%- endmacro %}
