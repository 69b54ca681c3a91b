{#
    percentage_event_fee and percent_of over literal rows (DECISIONLOG D76). Each row is one
    event: its value, its place in the period, the period's value up to it, then the charge's
    rate %, fixed fee, free events, free amount, per-event minimum and maximum.
      2.9 % + 0.30: 100 -> 3.20; 5 with a 0.50 minimum -> 0.50; 1,000 with a 10.00 maximum
      -> 10.00; rate 0 -> the fixed fee alone; rate 100 keeps all nine decimals.
      2 free events: the 2nd is free, the 3rd pays 0.29 + 0.30 = 0.59.
      150 free: running 100 free; the event taking it to 180 rates the 30 above 150 (0.87 +
      0.30 = 1.17); the next (20, running 200) rates all of it (0.58 + 0.30 = 0.88); an
      event that ends exactly at 150 is free; one 10^-9 above pays 0.30 and 2.9 % of 10^-9.
      Both limits, the allowance ends at the first reached: 1 free event and 150 free -> the
      2nd event (running 110) pays in full, 0.59; 3 free events and 50 free -> the 1st
      event (100) rates the 50 above, 1.45 + 0.30 = 1.75.
#}
with

cases as (

    select
        literal_rows.case_name,
        literal_rows.event_value::decimal(38, 9) as event_value,
        literal_rows.event_position::bigint as event_position,
        literal_rows.running_total::decimal(38, 9) as running_total,
        literal_rows.rate_percent::decimal(38, 9) as rate_percent,
        literal_rows.fixed_fee::decimal(38, 9) as fixed_fee,
        literal_rows.free_events::bigint as free_events,
        literal_rows.free_amount::decimal(38, 9) as free_amount,
        literal_rows.min_fee::decimal(38, 9) as min_fee,
        literal_rows.max_fee::decimal(38, 9) as max_fee,
        literal_rows.expected::decimal(38, 15) as expected
    from (
        values
        ('rate and fixed fee', 100, 1, 100, 2.9, 0.30, null, null, null, null, 3.20),
        ('per-event minimum', 5, 1, 5, 2.9, 0.30, null, null, 0.50, null, 0.50),
        ('per-event maximum', 1000, 1, 1000, 2.9, 0.30, null, null, 0.50, 10.00, 10.00),
        ('fixed fee alone', 999, 1, 999, 0, 0.30, null, null, null, null, 0.30),
        (
            'all of it',
            12.345678901,
            1,
            12.345678901,
            100,
            null,
            null,
            null,
            null,
            null,
            12.345678901
        ),
        ('last free event', 10, 2, 20, 2.9, 0.30, 2, null, null, null, 0),
        ('first charged event', 10, 3, 30, 2.9, 0.30, 2, null, null, null, 0.59),
        ('inside free amount', 100, 1, 100, 2.9, 0.30, null, 150, null, null, 0),
        ('crossing free amount', 80, 2, 180, 2.9, 0.30, null, 150, null, null, 1.17),
        ('past free amount', 20, 3, 200, 2.9, 0.30, null, 150, null, null, 0.88),
        ('ending at free amount', 50, 2, 150, 2.9, 0.30, null, 150, null, null, 0),
        (
            'a nano-unit past it',
            50,
            2,
            150.000000001,
            2.9,
            0.30,
            null,
            150,
            null,
            null,
            0.300000000029
        ),
        ('free events end first', 10, 2, 110, 2.9, 0.30, 1, 150, null, null, 0.59),
        ('free amount ends first', 100, 1, 100, 2.9, 0.30, 3, 50, null, null, 1.75)
    ) as literal_rows (
        case_name, event_value, event_position, running_total, rate_percent, fixed_fee, free_events,
        free_amount, min_fee, max_fee, expected
    )

),

checked as (

    select
        case_name,
        expected,
        {{ percentage_event_fee(
            'event_value', 'event_position', 'running_total', 'rate_percent', 'fixed_fee', 'free_events',
            'free_amount', 'min_fee', 'max_fee'
        ) }} as actual
    from cases
    union all
    select
        'percent_of exact' as case_name,
        0.000001::decimal(38, 15) as expected,
        {{ percent_of('cast(1 as decimal(38, 9))', 'cast(0.0001 as decimal(38, 9))') }} as actual

)

select *
from checked
where actual is distinct from expected
