{#
    Adjustments for periods already billed on a finalized invoice (late usage and
    reversals): per charge, and for the commitment true-up, the period rated now minus the
    period as that invoice saw it, both with today's rate card (architecture §6.4 step 5).
    Only a difference is a row; int_invoice_lines_assembled places it on the customer's next
    open invoice.
#}
with

subscription_periods_billed as (

    select * from {{ ref('int_subscription_periods_billed') }}

),

charge_limits_applied as (

    select * from {{ ref('int_charge_limits_applied') }}

),

commitment_true_ups as (

    select * from {{ ref('int_commitment_true_ups') }}

),

billed_charges as (

    select * from charge_limits_applied
    where is_billed

),

usage_adjustments as (

    select
        current_side.subscription_period_id,
        current_side.charge_id,
        current_side.meter_id,
        current_side.dimension_value,
        current_side.charge_model,
        current_side.display_name,
        current_side.quantity - billed_side.quantity as quantity,
        current_side.charge_amount - billed_side.charge_amount as amount
    from billed_charges as current_side
    inner join billed_charges as billed_side
        on
            current_side.subscription_period_id = billed_side.subscription_period_id
            and current_side.charge_id = billed_side.charge_id
            and billed_side.scenario = 'billed'
    where
        current_side.scenario = 'current'
        and current_side.charge_amount != billed_side.charge_amount

),

commitment_adjustments as (

    select
        current_side.subscription_period_id,
        current_side.true_up_amount - billed_side.true_up_amount as amount
    from commitment_true_ups as current_side
    inner join commitment_true_ups as billed_side
        on
            current_side.subscription_period_id = billed_side.subscription_period_id
            and billed_side.scenario = 'billed'
    where
        current_side.scenario = 'current'
        and current_side.true_up_amount != billed_side.true_up_amount

),

adjustments as (

    select
        usage_adjustments.subscription_period_id,
        subscription_periods_billed.billing_period_start as source_period_start,
        usage_adjustments.charge_id,
        usage_adjustments.meter_id,
        usage_adjustments.dimension_value,
        usage_adjustments.charge_model,
        usage_adjustments.quantity,
        usage_adjustments.amount,
        usage_adjustments.display_name || ': correction to '
        || strftime(subscription_periods_billed.billing_period_start, '%Y-%m')
        || ' (late usage or reversals)' as description
    from usage_adjustments
    inner join subscription_periods_billed
        on
            usage_adjustments.subscription_period_id
            = subscription_periods_billed.subscription_period_id
    union all
    select
        commitment_adjustments.subscription_period_id,
        subscription_periods_billed.billing_period_start as source_period_start,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        cast(null as varchar) as charge_model,
        cast(null as decimal(38, 9)) as quantity,
        commitment_adjustments.amount,
        'Minimum commitment true-up: correction to '
        || strftime(subscription_periods_billed.billing_period_start, '%Y-%m') as description
    from commitment_adjustments
    inner join subscription_periods_billed
        on
            commitment_adjustments.subscription_period_id
            = subscription_periods_billed.subscription_period_id

)

select * from adjustments
