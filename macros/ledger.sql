{#
    The append-only ledger of finalized invoices, as the previous builds left it.

    Rating must know which periods are already final, but the ledger is written at the end
    of the same DAG (fct_invoices_finalized), so a ref() would be a cycle. Models read the
    ledger's stored state instead: the table itself when it exists, an empty relation with
    the same columns before the first finalization.
#}
{% macro finalized_ledger(model_name, empty_columns) -%}
    {%- set relation = adapter.get_relation(
        database=target.database,
        schema=generate_schema_name('ledger', none),
        identifier=model_name
    ) -%}
    {%- if relation is not none -%}
        select * from {{ relation }}
    {%- else -%}
        select
            {%- for column, data_type in empty_columns.items() %}
            cast(null as {{ data_type }}) as {{ column }}{{ "," if not loop.last }}
            {%- endfor %}
        where false
    {%- endif -%}
{%- endmacro %}
