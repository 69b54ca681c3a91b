{# round_money over literal rows: halves away from zero, 0 to 3 minor units. #}
with

cases as (

    select
        literal_rows.amount::decimal(38, 18) as amount,
        literal_rows.minor_units::integer as minor_units,
        literal_rows.expected::decimal(38, 4) as expected
    from (
        values
        (0.125, 2, 0.13),
        (-0.125, 2, -0.13),
        (0.1249, 2, 0.12),
        (0.18, 2, 0.18),
        (1234.5, 0, 1235),
        (-1234.5, 0, -1235),
        (0.0005, 3, 0.001),
        (10, 2, 10.00),
        (0.000000000000000001, 2, 0)
    ) as literal_rows (amount, minor_units, expected)

),

checked as (

    select
        *,
        {{ round_money('amount', 'minor_units') }} as actual
    from cases

)

select *
from checked
where actual is distinct from expected
