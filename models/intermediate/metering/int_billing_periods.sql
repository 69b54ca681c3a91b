{#
    The calendar of billing periods this build invoices: UTC calendar months from the first
    billing period to the month that contains `as_of` (the open period gets a draft).
#}
with

usage_events as (

    select * from {{ ref('stg_events__usage_events') }}

),

run_clock as (

    select
        {{ as_of_timestamp() }} as as_of_at

),

bounds as (

    select
        coalesce(
            cast(nullif('{{ var("first_billing_period") }}', '') as date),  -- noqa: LT05
            {# A stray old timestamp must not open years of back-billing (D10). #}
            greatest(
                cast(date_trunc('month', min(usage_events.event_at)) as date),
                cast(
                    date_trunc('month', any_value(run_clock.as_of_at))
                    - to_months(cast({{ var('max_backfill_months') }} as integer))
                    as date
                )
            ),
            cast(date_trunc('month', any_value(run_clock.as_of_at)) as date)
        ) as first_period_start,
        cast(date_trunc('month', any_value(run_clock.as_of_at)) as date) as last_period_start
    from run_clock
    left join usage_events
        on true

),

periods as (

    select cast(period.range as date) as billing_period_start
    from bounds
    cross join
        range(
            bounds.first_period_start,
            bounds.last_period_start + interval 1 month,
            interval 1 month
        ) as period

),

periods_with_ends as (

    select
        ---------- dates
        billing_period_start,
        cast(billing_period_start + interval 1 month as date) as billing_period_end,
        ---------- numerics
        datediff(
            'day', billing_period_start, cast(billing_period_start + interval 1 month as date)
        ) as days_in_period
    from periods

)

select * from periods_with_ends
