{#
    Every rated usage line (one per tier of a graduated charge, per scenario), its amount
    rounded to the currency's minor units: the one place a usage amount is rounded
    (round_money); charge limits, commitments, adjustments and invoices only add these up.
#}
with

charges_rated as (

    select * from {{ ref('int_charges_rated') }}

),

subscription_periods_billed as (

    select * from {{ ref('int_subscription_periods_billed') }}

),

usage_lines_rounded as (

    select
        charges_rated.*,
        subscription_periods_billed.is_billed,
        {# A line beyond the supported range has no amount: rated as 0 and its customer's
           invoices are held (int_invoices_calculated). #}
        {{ round_money(
            'coalesce(charges_rated.amount_unrounded, 0)', 'subscription_periods_billed.minor_units'
        ) }} as amount
    from charges_rated
    inner join subscription_periods_billed
        on charges_rated.subscription_period_id = subscription_periods_billed.subscription_period_id

)

{# Every column of int_charges_rated passes through, plus the ones added here. #}
select * from usage_lines_rounded  -- noqa: AM04
