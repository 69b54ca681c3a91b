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
    the same `unique_key` (one column or a list), and a key may also go away. A model whose incremental SQL
    selects a key with `meta.tombstone_when` true (a row that says "no longer here")
    deletes that key's rows and inserts nothing for it. dbt's delete+insert cannot delete a
    key that has no new row.
#}
{% macro get_incremental_replace_keys_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set new_rows = arg_dict['temp_relation'] -%}
    {#- A key of several columns is compared as a row: (a, b) in (select a, b ...). -#}
    {%- set key_columns = [arg_dict['unique_key']] if arg_dict['unique_key'] is string
        else arg_dict['unique_key'] -%}
    {%- set unique_key = '(' ~ key_columns | join(', ') ~ ')' -%}
    {%- set tombstone_when = config.get('meta', {}).get('tombstone_when') -%}
    {%- if not tombstone_when -%}
        {{ exceptions.raise_compiler_error(
            'incremental_strategy replace_keys needs meta.tombstone_when in ' ~ this
        ) }}
    {%- endif -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) -%}
    delete from {{ target }}
    where {{ unique_key }} in (select {{ key_columns | join(', ') }} from {{ new_rows }});

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ new_rows }}
    where not coalesce({{ tombstone_when }}, false)
{%- endmacro %}

{#
    The event ids whose routing changed in the routed batches above `routed_up_to`: the id
    of every routed row written since, and the event each such row reverses (its
    reversal may have come or gone). Every model downstream of routing that keeps a row per
    event recomputes exactly these ids (DECISIONLOG D58, D61).
#}
{% macro event_ids_routed_since(routed_up_to) -%}
    select event_id from {{ ref('stg_events__routed_events') }}
    where routed_batch > {{ routed_up_to }} and event_id is not null
    union
    select reverses_event_id from {{ ref('stg_events__routed_events') }}
    where routed_batch > {{ routed_up_to }} and reverses_event_id is not null
{%- endmacro %}

{#
    The customer x date keys a batch touched since routed batch `routed_up_to`, at the
    grain of `date_column` (`event_date` for days, `billing_period_start` for months): the
    day or month of every routed row written since (a changed id's old date and its new
    one, a withdrawn event's date) and the key of every row of `events` (a model stamped
    with `routed_through_batch`) rewritten since, which brings the event a new reversal
    cancels on its own date. The day and period models recompute exactly these keys
    (DECISIONLOG D61, D64).
#}
{% macro keys_routed_since(routed_up_to, events, date_column) -%}
    {%- set routed_dates = {
        'event_date': 'event_date',
        'billing_period_start': "cast(date_trunc('month', event_date) as date)",
    } -%}
    {%- if date_column not in routed_dates -%}
        {{ exceptions.raise_compiler_error(
            'keys_routed_since: date_column must be one of ' ~ routed_dates.keys() | list
            ~ ', not ' ~ date_column
        ) }}
    {%- endif %}
    select
        customer_id,
        {{ routed_dates[date_column] }} as {{ date_column }}
    from {{ ref('stg_events__routed_events') }}
    where
        routed_batch > {{ routed_up_to }}
        and customer_id is not null
        and event_date is not null
    union
    select
        customer_id,
        {{ date_column }}
    from {{ events }}
    where routed_through_batch > {{ routed_up_to }}
{%- endmacro %}

{#
    The rows that delete the keys a batch touched and left empty: each key of `changed`
    that `recomputed` has no row for, with the batch of `batches` (a one-row relation of
    `routed_through_batch`) and every other column null. A model appends them to its
    recomputed rows with `union all by name`; `replace_keys` deletes their keys and
    inserts nothing for them (its `meta.tombstone_when` is true on them).
#}
{% macro tombstones(changed, recomputed, key_columns, batches='routed_through') -%}
    select
        {%- for column in key_columns %}
        {{ changed }}.{{ column }},
        {%- endfor %}
        {{ batches }}.routed_through_batch
    from {{ changed }}
    cross join {{ batches }}
    where ({{ changed }}.{{ key_columns | join(', ' ~ changed ~ '.') }}) not in (
        select {{ recomputed }}.{{ key_columns | join(', ' ~ recomputed ~ '.') }}
        from {{ recomputed }}
    )
{%- endmacro %}

{# The largest routed batch: what a model built now has taken of routing. #}
{% macro routed_through_batch() -%}
    select coalesce(max(routed_batch), 0) as routed_through_batch
    from {{ ref('stg_events__routed_events') }}
{%- endmacro %}

{# The one value a query returns, run when the model compiles; none while dbt parses. #}
{% macro single_value(sql) -%}
    {%- if execute -%}
        {{ return(run_query(sql).columns[0].values()[0]) }}
    {%- endif -%}
    {{ return(none) }}
{%- endmacro %}

{#
    A condition that keeps `column` within the first and last date `dates_sql` returns (a
    query whose first column is a date), compiled in as literals so DuckDB skips the row
    groups outside them before it joins (a semi join on a table of changed keys reads every
    row: 1.0 s at 5 M events against 0.06 s, D63); `false` when there are no dates. Run when
    the model compiles; `true` while dbt parses.
#}
{% macro within_dates_of(column, dates_sql) -%}
    {%- if not execute -%}
        {{ return('true') }}
    {%- endif -%}
    {%- set bounds = run_query(
        'select min(changed_date), max(changed_date) from (' ~ dates_sql
        ~ ') as changed (changed_date)'
    ) -%}
    {%- set first = bounds.columns[0].values()[0] -%}
    {%- set last = bounds.columns[1].values()[0] -%}
    {%- if first is none -%}
        {{ return('false') }}
    {%- endif -%}
    {{ return(column ~ " between date '" ~ first ~ "' and date '" ~ last ~ "'") }}
{%- endmacro %}

{#
    A condition that keeps the rows of the customer x date keys a batch touched: `changed`
    is the CTE of those keys and `changed_sql` its query, whose date range is compiled in
    as literals (within_dates_of) so DuckDB skips the row groups of other dates before the
    key match runs. `date_column` is `event_date` or `billing_period_start`.
#}
{% macro within_changed_keys(changed, changed_sql, date_column) -%}
    {{ within_dates_of(
        date_column,
        'select ' ~ date_column ~ ' from (' ~ changed_sql ~ ') as changed_keys'
    ) }}
    and (customer_id, {{ date_column }}) in (
        select {{ changed }}.customer_id, {{ changed }}.{{ date_column }} from {{ changed }}
    )
{%- endmacro %}

{#
    The customer x billing period keys whose finalized invoice's file watermark
    (int_invoice_periods_billed) is not the one `stored_sql` (customer_id,
    billing_period_start, billed_through_file_id of a model's stored rows) was counted
    against: a finalization, a void, an invoice that carried the month's adjustments. The
    period models that count what an invoice saw recompute these (DECISIONLOG D64, D67).
#}
{% macro billed_watermarks_moved(stored_sql) -%}
    select
        coalesce(billed.customer_id, stored.customer_id) as customer_id,
        coalesce(billed.billing_period_start, stored.billing_period_start)
            as billing_period_start
    from {{ ref('int_invoice_periods_billed') }} as billed
    full outer join (
        select distinct
            customer_id,
            billing_period_start,
            billed_through_file_id
        from ({{ stored_sql }}) as stored_rows
    ) as stored
        on
            billed.customer_id = stored.customer_id
            and billed.billing_period_start = stored.billing_period_start
    where billed.billed_through_file_id is distinct from stored.billed_through_file_id
{%- endmacro %}
