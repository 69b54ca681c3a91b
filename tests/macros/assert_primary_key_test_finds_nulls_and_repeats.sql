{#
    The primary_key generic test over literal rows: it returns the repeated key with its
    count and the null key, and nothing for a key held once.
#}
with

failures as (

    {{ test_primary_key(
        '(select * from (values (1), (1), (null), (2), (3)) as literal_rows (key_value))',
        'key_value'
    ) }}

),

expected as (

    select
        literal_rows.key_value::integer as key_value,
        literal_rows.row_count::bigint as row_count
    from (values (1, 2), (null, 1)) as literal_rows (key_value, row_count)

),

missing as (

    select * from expected
    except
    select * from failures

),

unexpected as (

    select * from failures
    except
    select * from expected

)

select
    'missing' as problem,
    key_value,
    row_count
from missing
union all
select
    'unexpected' as problem,
    key_value,
    row_count
from unexpected
