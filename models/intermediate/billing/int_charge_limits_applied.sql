{#
    One row per subscription period x charge x scenario: the charge's rounded usage, capped
    at max_amount by a negative `maximum_amount`, then raised to min_amount (prorated like
    the base fee) by a `minimum_amount` (architecture §6.3, 6.4 step 3). `charge_amount` is
    what the charge costs after both limits.
#}
with

usage_lines_rounded as (

    select * from {{ ref('int_usage_lines_rounded') }}

),

charge_totals_by_scenario as (

    select
        subscription_period_id,
        charge_id,
        scenario,
        any_value(meter_id) as meter_id,
        any_value(dimension_value) as dimension_value,
        any_value(charge_model) as charge_model,
        any_value(display_name) as display_name,
        any_value(quantity) as quantity,
        any_value(is_billed) as is_billed,
        sum(amount) as usage_amount,
        any_value(max_amount) as max_amount,
        any_value(min_amount) as min_amount,
        any_value(max_amount_rounded) as max_amount_rounded,
        any_value(min_amount_prorated) as min_amount_prorated
    from usage_lines_rounded
    group by subscription_period_id, charge_id, scenario

),

charge_maximums as (

    select
        *,
        case
            when max_amount is not null and usage_amount > max_amount_rounded
                then max_amount_rounded - usage_amount
            else 0
        end as maximum_amount
    from charge_totals_by_scenario

),

charge_limits as (

    select
        *,
        case
            when min_amount is not null and usage_amount + maximum_amount < min_amount_prorated
                then min_amount_prorated - (usage_amount + maximum_amount)
            else 0
        end as minimum_amount
    from charge_maximums

),

charge_limits_applied as (

    select
        *,
        usage_amount + maximum_amount + minimum_amount as charge_amount
    from charge_limits

)

select * from charge_limits_applied
