{#
    Folder = selector = schema: a model in models/marts lands in schema `marts`, not
    `main_marts`, so finance and BI tools see stable, short schema names.
#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}
        {{ target.schema }}
    {%- else -%}
        {{ custom_schema_name | trim }}
    {%- endif -%}
{%- endmacro %}
