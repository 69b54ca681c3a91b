{#
    Data tests on the event tables read only the rows written since the test last passed
    (DECISIONLOG D68). A model opts in with `meta: {tests_read_rows_written_after: <batch
    column>}`; a view over an event table names the table its batches come from
    (`batches_in: <model>`), so the largest batch is read from the table instead of by
    computing the view. Then:
    - a row test (not_null, accepted_values, expression_is_true) reads the rows whose batch
      is above the one it last passed;
    - a uniqueness test reads every row sharing a key with those rows, so a new row that
      repeats an old key still fails; on a view, only those rows: a view repeats a key only
      by a join that fans a row out, which shows among its new rows, and the keys of the
      table under it are tested there; a primary_key test also reads the new rows whose key
      is null;
    - a relationships test reads every row: the table it points to may have lost a row.
    Each passing scoped test records the largest batch it saw (record_data_test_passes,
    on-run-end); a failing one records nothing, so its rows are read again by every later
    build until it passes.
#}

{#
    How a data test node is scoped: none (every row), or its batch column, the model whose
    table holds the batches (none: the tested one) and, for a uniqueness test on a table,
    its key columns.
#}
{% macro data_test_scope(test_node) -%}
    {%- set row_tests = ['not_null', 'accepted_values', 'expression_is_true'] -%}
    {%- set key_tests = ['unique', 'unique_combination_of_columns', 'primary_key'] -%}
    {%- set attached = test_node.attached_node -%}
    {%- set tested = graph.nodes.get(attached) if attached else none -%}
    {%- set model_meta = tested.config.meta if tested else {} -%}
    {%- set batch_column = model_meta.get('tests_read_rows_written_after') -%}
    {%- set test_name = test_node.test_metadata.name if test_node.test_metadata else none -%}
    {%- if not batch_column or test_name not in row_tests + key_tests -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set arguments = test_node.test_metadata.kwargs -%}
    {%- set key_columns = [] -%}
    {%- if model_meta.get('batches_in') -%}
        {%- set key_columns = [] -%}
    {%- elif test_name in ['unique', 'primary_key'] -%}
        {%- set key_columns = [arguments['column_name']] -%}
    {%- elif test_name == 'unique_combination_of_columns' -%}
        {%- set key_columns = arguments['combination_of_columns'] -%}
    {%- endif -%}
    {%- set scope = {
        'batch_column': batch_column,
        'batches_in': model_meta.get('batches_in'),
        'key_columns': key_columns,
    } -%}
    {#- Only where it is true: the scope is part of every test's fingerprint, and the other
        tests' fingerprints (so their marks) stay as they were before primary_key. -#}
    {%- if test_name == 'primary_key' -%}
        {%- do scope.update({'null_keys_too': true}) -%}
    {%- endif -%}
    {{ return(scope) }}
{%- endmacro %}

{#
    The relation that holds a scoped test's batches: the tested one, or the table under a
    view. Read from the graph: a test's own dependencies are fixed when dbt parses it.
#}
{% macro data_test_batches(scope, test_node) -%}
    {%- if not scope['batches_in'] -%}
        {{ return(graph.nodes[test_node.attached_node].relation_name) }}
    {%- endif -%}
    {{ return(graph.nodes['model.' ~ project_name ~ '.' ~ scope['batches_in']].relation_name) }}
{%- endmacro %}

{#
    dbt wraps the model of every data test in this macro (its `where` config). A scoped
    test reads the rows above its last passed batch, or every row when it has not passed
    with its present definition, or when the table holds only batches below that mark (it
    was rebuilt with the clock set back, so batch numbers no longer say what was checked).
#}
{% macro default__get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- set scope = data_test_scope(model) if execute else none -%}
    {%- set passed_through = data_test_passed_through(model) if scope else none -%}
    {%- if passed_through is not none -%}
        {%- set batch_column = scope['batch_column'] -%}
        {%- set written_since -%}
            {{ batch_column }} > {{ passed_through }}
            or {{ passed_through }} > (
                select max({{ batch_column }}) from {{ data_test_batches(scope, model) }}
            )
        {%- endset -%}
        {%- if scope['key_columns'] -%}
            {%- set key = '(' ~ scope['key_columns'] | join(', ') ~ ')' -%}
            {%- set new_rows = written_since -%}
            {%- set written_since -%}
                {{ key }} in (
                    select {{ scope['key_columns'] | join(', ') }}
                    from {{ relation }}
                    where {{ new_rows }}
                )
                {%- if scope.get('null_keys_too') %}
                or ({{ scope['key_columns'][0] }} is null and ({{ new_rows }}))
                {%- endif -%}
            {%- endset -%}
        {%- endif -%}
        {%- set where = '(' ~ written_since ~ ')' ~ (' and (' ~ where ~ ')' if where else '') -%}
    {%- endif -%}
    {%- if where -%}
        {{ return('(select * from ' ~ relation ~ ' where ' ~ where ~ ') dbt_subquery') }}
    {%- endif -%}
    {{ return(relation) }}
{%- endmacro %}

{#
    What a test asserts, as a hash: its id, its arguments (columns, accepted values, the
    expression), its `where` and its scope. A test whose definition changed reads every
    row again.
#}
{% macro data_test_fingerprint(test_node) -%}
    {{ return(local_md5(
        test_node.unique_id ~ '|' ~ test_node.test_metadata.name
        ~ '|' ~ tojson(test_node.test_metadata.kwargs, sort_keys=true)
        ~ '|' ~ tojson(data_test_scope(test_node) or {}, sort_keys=true)
        ~ '|' ~ (test_node.config.where or '')
    )) }}
{%- endmacro %}

{# The batch through which this test last passed with its present definition, or none. #}
{% macro data_test_passed_through(test_node) -%}
    {%- set passes = load_relation(data_test_passes()) -%}
    {%- if passes is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- set passed = run_query(
        'select max(passed_through_batch) from ' ~ passes
        ~ " where test_id = '" ~ test_node.unique_id ~ "'"
        ~ " and test_fingerprint = '" ~ data_test_fingerprint(test_node) ~ "'"
    ).columns[0].values()[0] -%}
    {{ return(passed) }}
{%- endmacro %}

{#
    The table of passes as a plain relation: under `dbt run --empty` a source renders as an
    empty subquery, which cannot be created or inserted into.
#}
{% macro data_test_passes() -%}
    {%- set declared = source('ops', 'data_test_passes') -%}
    {{ return(api.Relation.create(
        database=declared.database, schema=declared.schema, identifier=declared.identifier
    )) }}
{%- endmacro %}

{# on-run-start: the table of passes exists before any test reads it. #}
{% macro create_data_test_passes() -%}
    {%- set passes = data_test_passes() -%}
    create schema if not exists {{ passes.schema }};
    create table if not exists {{ passes }} (
        test_id varchar not null,
        test_fingerprint varchar not null,
        passed_through_batch bigint not null,
        passed_at timestamptz not null default current_timestamp
    );
{%- endmacro %}

{#
    on-run-end: every scoped test that passed records the largest batch of its table, which
    is the largest it read: nothing writes a model after its tests in the same run.
#}
{% macro record_data_test_passes(results) -%}
    {%- set passes = data_test_passes() -%}
    {%- for result in results
        if result.node.resource_type == 'test' and result.status == 'pass' -%}
        {%- set scope = data_test_scope(result.node) -%}
        {%- if scope %}
            insert into {{ passes }} (test_id, test_fingerprint, passed_through_batch)
            select
                '{{ result.node.unique_id }}',
                '{{ data_test_fingerprint(result.node) }}',
                max({{ scope['batch_column'] }})
            from {{ data_test_batches(scope, result.node) }}
            having count(*) > 0;
        {%- endif -%}
    {%- endfor -%}
{%- endmacro %}
