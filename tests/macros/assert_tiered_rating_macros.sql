{#
    rate_graduated, rate_volume and rate_staircase over literal tiers and quantities: zero
    usage, exactly on a tier boundary, just past it, fractional quantities, the open last
    tier, and the worked examples of architecture §6.3. Returns the mismatches.

    Tiers: up_to 5,000 @ 0.02 (+10 flat) / 20,000 @ 0.015 (+5 flat) / open @ 0.01.
      graduated q=0        : tier 1 reached at zero              = 10
      graduated q=5,000    : 5,000 x 0.02 + 10                   = 110
      graduated q=5,000.5  : 110 + 0.5 x 0.015 + 5               = 115.0075
      graduated q=5,001    : 110 + 1 x 0.015 + 5                 = 115.015
      graduated q=20,000   : 110 + 15,000 x 0.015 + 5            = 340
      graduated q=25,000   : 340 + 5,000 x 0.01                  = 390
      volume q=0           : tier 1: 0 + 10                      = 10
      volume q=0.5         : tier 1: 0.5 x 0.02 + 10             = 10.01
      volume q=5,000       : tier 1: 100 + 10                    = 110
      volume q=5,001       : tier 2: 5,001 x 0.015 + 5           = 80.015
      volume q=20,000.5    : tier 3: 20,000.5 x 0.01             = 200.005
    Worked examples (no flat fees): 15,000 calls, 5,000 @ 0.02 / 20,000 @ 0.015 / open @ 0.01
      graduated = 5,000 x 0.02 + 10,000 x 0.015 = 250.00; volume = 15,000 x 0.015 = 225.00.
    Staircase steps up_to 5,000 -> 100 / open -> 200:
      q=0 -> 100, q=5,000 -> 100, q=5,000.001 -> 200, q=7,500 -> 200 (worked example).
#}
with

tiers as (

    select
        literal_rows.card,
        literal_rows.tier::integer as tier,
        literal_rows.up_to::decimal(38, 9) as up_to,
        literal_rows.unit_price::decimal(18, 9) as unit_price,
        literal_rows.flat_fee::decimal(18, 6) as flat_fee
    from (
        values
        ('fees', 1, 5000, 0.02, 10),
        ('fees', 2, 20000, 0.015, 5),
        ('fees', 3, null, 0.01, 0),
        ('example', 1, 5000, 0.02, 0),
        ('example', 2, 20000, 0.015, 0),
        ('example', 3, null, 0.01, 0),
        ('steps', 1, 5000, 0, 100),
        ('steps', 2, null, 0, 200)
    ) as literal_rows (card, tier, up_to, unit_price, flat_fee)

),

tiers_with_bounds as (

    select
        *,
        coalesce(lag(up_to) over (partition by card order by tier), 0) as lower_bound
    from tiers

),

cases as (

    select
        literal_rows.card,
        literal_rows.charge_model,
        literal_rows.quantity::decimal(38, 9) as quantity,
        literal_rows.expected::decimal(38, 9) as expected
    from (
        values
        ('fees', 'graduated', 0, 10),
        ('fees', 'graduated', 5000, 110),
        ('fees', 'graduated', 5000.5, 115.0075),
        ('fees', 'graduated', 5001, 115.015),
        ('fees', 'graduated', 20000, 340),
        ('fees', 'graduated', 25000, 390),
        ('fees', 'volume', 0, 10),
        ('fees', 'volume', 0.5, 10.01),
        ('fees', 'volume', 5000, 110),
        ('fees', 'volume', 5001, 80.015),
        ('fees', 'volume', 20000.5, 200.005),
        ('example', 'graduated', 15000, 250.00),
        ('example', 'volume', 15000, 225.00),
        ('steps', 'staircase', 0, 100),
        ('steps', 'staircase', 5000, 100),
        ('steps', 'staircase', 5000.001, 200),
        ('steps', 'staircase', 7500, 200)
    ) as literal_rows (card, charge_model, quantity, expected)

),

rated as (

    select
        cases.card,
        cases.charge_model,
        cases.quantity,
        cases.expected,
        sum(
            case cases.charge_model
                when 'graduated'
                    then
                        case
                            when {{ tier_is_reached(
                                'cases.quantity', 'tiers_with_bounds.lower_bound'
                            ) }}
                                then {{ rate_graduated(
                                    'cases.quantity',
                                    'tiers_with_bounds.lower_bound',
                                    'tiers_with_bounds.up_to',
                                    'tiers_with_bounds.unit_price',
                                    'tiers_with_bounds.flat_fee'
                                ) }}
                        end
                when 'volume'
                    then
                        case
                            when {{ is_selected_tier(
                                'cases.quantity', 'tiers_with_bounds.lower_bound', 'tiers_with_bounds.up_to'
                            ) }}
                                then {{ rate_volume(
                                    'cases.quantity',
                                    'tiers_with_bounds.unit_price',
                                    'tiers_with_bounds.flat_fee'
                                ) }}
                        end
                when 'staircase'
                    then
                        case
                            when {{ is_selected_tier(
                                'cases.quantity', 'tiers_with_bounds.lower_bound', 'tiers_with_bounds.up_to'
                            ) }}
                                then {{ rate_staircase('tiers_with_bounds.flat_fee') }}
                        end
            end
        ) as actual,
        {# Volume and staircase price with exactly one tier. #}
        count(*) filter (
            where {{ is_selected_tier(
                'cases.quantity', 'tiers_with_bounds.lower_bound', 'tiers_with_bounds.up_to'
            ) }}
        ) as selected_tiers
    from cases
    inner join tiers_with_bounds
        on cases.card = tiers_with_bounds.card
    group by cases.card, cases.charge_model, cases.quantity, cases.expected

)

select *
from rated
where actual is distinct from expected or selected_tiers != 1
