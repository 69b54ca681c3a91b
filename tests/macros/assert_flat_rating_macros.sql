{#
    rate_standard and rate_package over literal rows.
      standard 50,000 x 0.01 = 500.00 (architecture §6.3 worked example); 0 x 0.01 = 0;
      1.5 x 0.333 = 0.4995 (unrounded: rounding is round_money's job).
      package 2.00 per 100, 50 free: q=0 -> 0; q=50 -> 0 (free units above usage);
      q=51 -> ceil(1/100) = 1 package = 2.00; q=150 -> 1 -> 2.00; q=150.5 -> 2 -> 4.00;
      q=250 -> 2 -> 4.00; 1,000 free and q=10 -> 0.
#}
with

cases as (

    select
        literal_rows.charge_model,
        literal_rows.quantity::decimal(38, 9) as quantity,
        literal_rows.unit_price::decimal(18, 9) as unit_price,
        literal_rows.package_size::decimal(18, 6) as package_size,
        literal_rows.free_units::decimal(18, 6) as free_units,
        literal_rows.expected::decimal(38, 9) as expected
    from (
        values
        ('standard', 50000, 0.01, null, null, 500.00),
        ('standard', 0, 0.01, null, null, 0),
        ('standard', 1.5, 0.333, null, null, 0.4995),
        ('package', 0, 2.00, 100, 50, 0),
        ('package', 50, 2.00, 100, 50, 0),
        ('package', 51, 2.00, 100, 50, 2.00),
        ('package', 150, 2.00, 100, 50, 2.00),
        ('package', 150.5, 2.00, 100, 50, 4.00),
        ('package', 250, 2.00, 100, 50, 4.00),
        ('package', 10, 2.00, 100, 1000, 0),
        ('package', 100, 2.00, 100, null, 2.00)
    ) as literal_rows (charge_model, quantity, unit_price, package_size, free_units, expected)

),

checked as (

    select
        *,
        case charge_model
            when 'standard' then {{ rate_standard('quantity', 'unit_price') }}
            else {{ rate_package('quantity', 'unit_price', 'package_size', 'free_units') }}
        end as actual
    from cases

)

select *
from checked
where actual is distinct from expected
