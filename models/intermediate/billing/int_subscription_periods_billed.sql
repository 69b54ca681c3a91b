{#
    Every subscription period, marked `is_billed` when a finalized invoice in force already
    billed it (int_invoice_periods_billed). A billed period gets no new lines, only
    adjustments for what changed since (int_invoice_adjustments).
#}
with

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

periods_billed as (

    select * from {{ ref('int_invoice_periods_billed') }}

),

subscription_periods_billed as (

    select
        subscription_periods.*,
        periods_billed.customer_id is not null as is_billed
    from subscription_periods
    left join periods_billed
        on
            subscription_periods.customer_id = periods_billed.customer_id
            and subscription_periods.billing_period_start = periods_billed.billing_period_start

)

{# Every column of int_subscriptions_prorated_to_periods passes through, plus is_billed. #}
select * from subscription_periods_billed  -- noqa: AM04
