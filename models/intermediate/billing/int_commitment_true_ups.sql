{#
    The minimum-commitment true-up per subscription period with a commitment, per scenario
    (`current`: rated now; `billed`: as the finalized invoice saw it, for billed periods
    only). The invoice is max(commitment, usage): the shortfall of usage after charge limits
    is the true-up; the base fee does not count toward the commitment.
#}
with

subscription_periods_billed as (

    select * from {{ ref('int_subscription_periods_billed') }}

),

charge_limits_applied as (

    select * from {{ ref('int_charge_limits_applied') }}

),

usage_per_scenario as (

    select
        subscription_period_id,
        scenario,
        sum(charge_amount) as usage_amount
    from charge_limits_applied
    group by subscription_period_id, scenario

),

commitment_true_ups as (

    select
        subscription_periods_billed.subscription_period_id,
        scenarios.scenario,
        subscription_periods_billed.is_billed,
        coalesce(usage_per_scenario.usage_amount, 0) as usage_amount,
        greatest(
            subscription_periods_billed.commitment_amount
            - coalesce(usage_per_scenario.usage_amount, 0),
            0
        ) as true_up_amount
    from subscription_periods_billed
    cross join (values ('current'), ('billed')) as scenarios (scenario)
    left join usage_per_scenario
        on
            subscription_periods_billed.subscription_period_id
            = usage_per_scenario.subscription_period_id
            and scenarios.scenario = usage_per_scenario.scenario
    where
        subscription_periods_billed.minimum_commitment is not null
        and (scenarios.scenario = 'current' or subscription_periods_billed.is_billed)

)

select * from commitment_true_ups
