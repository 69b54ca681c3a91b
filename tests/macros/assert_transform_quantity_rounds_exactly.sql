{#
    transform_quantity (architecture §6.2) over literal rows: every rounding mode, negative
    aggregates, negative precision, divisors that do not divide evenly, blank settings.
    Returns the rows whose result differs from the hand-computed one.
#}
with

cases as (

    select
        literal_rows.aggregate_quantity::decimal(38, 9) as aggregate_quantity,
        literal_rows.divisor::decimal(18, 6) as divisor,
        literal_rows.quantity_precision::integer as quantity_precision,
        literal_rows.rounding,
        literal_rows.expected::decimal(38, 9) as expected
    from (
        values
        (1500, 1000, 0, 'up', 2),
        (1500, 1000, 0, 'down', 1),
        (1500, 1000, 0, 'half_up', 2),
        (1499, 1000, 0, 'half_up', 1),
        (-1500, 1000, 0, 'half_up', -2),
        (-1500, 1000, 0, 'up', -1),
        (-1500, 1000, 0, 'down', -2),
        (1250, 1, -2, 'half_up', 1300),
        (1249, 1, -2, 'half_up', 1200),
        (1201, 1, -2, 'up', 1300),
        (1299, 1, -2, 'down', 1200),
        (10, 3, 2, 'none', 3.333333333),
        (10, 3, 2, 'down', 3.33),
        (10, 3, 2, 'up', 3.34),
        (2.5, null, null, 'none', 2.5),
        (2.5, null, null, null, 2.5),
        (0, 1000, 0, 'up', 0),
        (1, 1024, 3, 'half_up', 0.001),
        (1000, 1000, 0, 'up', 1),
        (1000.000000001, 1000, 0, 'up', 2),
        (0.5, 1, null, 'half_up', 1)
    ) as literal_rows (aggregate_quantity, divisor, quantity_precision, rounding, expected)

),

checked as (

    select
        *,
        {{ transform_quantity('aggregate_quantity', 'divisor', 'quantity_precision', 'rounding') }}
            as actual
    from cases

)

select *
from checked
where actual is distinct from expected
