{#
    The bookkeeping of the incremental event models (DECISIONLOG D57, D58). Each model
    stamps the rows a build writes with a batch number, and the next model down takes the
    rows whose batch is above the largest one it has already taken: a build killed between
    two models leaves the later one behind, and the next build catches it up.
#}

{#
    The largest value of `column` in the model's own table (0 when it is empty), read when
    the model compiles, so the SQL carries a literal DuckDB can skip row groups with. None
    when the model is built in full. A table from before the column existed fails with
    the one command that fixes it.
#}
{% macro incremental_watermark(column) -%}
    {%- if is_incremental() and execute -%}
        {%- set stored = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        {%- if column not in stored -%}
            {{ exceptions.raise_compiler_error(
                this ~ ' was built before it had the column ' ~ column
                ~ ': run `billing build --full-refresh` once'
            ) }}
        {%- endif -%}
        {{ return(run_query(
            'select coalesce(max(' ~ column ~ '), 0) from ' ~ this
        ).columns[0].values()[0]) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#
    The batch number a build stamps on the rows it writes: the build's start in
    microseconds since the epoch, or one more than the last batch of `column` if the clock
    went back. Larger than every batch before it even after a full refresh of this model
    alone, so a model downstream never mistakes new rows for ones it has taken.
#}
{% macro next_batch_number(column) -%}
    {%- set started = (run_started_at.timestamp() * 1000000) | int -%}
    {%- set last = incremental_watermark(column) -%}
    {%- if last is not none and last | int >= started -%}
        {{ return(last | int + 1) }}
    {%- endif -%}
    {{ return(started) }}
{%- endmacro %}

{#
    Incremental strategy `replace_keys`: the model's new rows replace every stored row of
    the same `unique_key`, and a key may also go away. A model whose incremental SQL
    selects a key with `meta.tombstone_when` true (a row that says "no longer here")
    deletes that key's rows and inserts nothing for it. dbt's delete+insert cannot delete a
    key that has no new row.
#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set new_rows = arg_dict['temp_relation'] -%}
    {%- set unique_key = arg_dict['unique_key'] -%}
    {%- set tombstone_when = config.get('meta', {}).get('tombstone_when') -%}
    {%- if not tombstone_when -%}
        {{ exceptions.raise_compiler_error(
            'incremental_strategy replace_keys needs meta.tombstone_when in ' ~ this
        ) }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ unique_key }} in (select {{ unique_key }} from {{ new_rows }});

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ new_rows }}
    where not coalesce({{ tombstone_when }}, false)
{%- endmacro %}
