{#
    The quantity of every charge of every active subscription in every period: the usage per
    charge (int_usage_aggregated_to_charges) transformed per architecture §6.2. Charges
    without usage get quantity 0, so every charge of the rate card reaches the invoice.

    Two scenarios: `current` counts every accepted, unreversed event; for periods already
    billed on a finalized invoice, `billed` counts only what that invoice saw (events and
    reversals landed up to its file watermark). Their difference is the late-usage
    adjustment (architecture §6.5), both rated with today's rate card.
#}
with

usage_per_charge as (

    select * from {{ ref('int_usage_aggregated_to_charges') }}

),

periods_billed as (

    select * from {{ ref('int_invoice_periods_billed') }}

),

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

plan_charges as (

    select * from {{ ref('plan_charges') }}

),

meters as (

    select * from {{ ref('meters') }}

),

scenarios as (

    select
        subscription_periods.subscription_period_id,
        'current' as scenario
    from subscription_periods
    union all
    select
        subscription_periods.subscription_period_id,
        'billed' as scenario
    from subscription_periods
    inner join periods_billed
        on
            subscription_periods.customer_id = periods_billed.customer_id
            and subscription_periods.billing_period_start = periods_billed.billing_period_start

),

charges_per_period as (

    select
        ---------- ids
        subscription_periods.subscription_period_id || ':' || plan_charges.charge_id
        || ':' || scenarios.scenario as charge_period_id,
        scenarios.scenario,
        subscription_periods.subscription_period_id,
        subscription_periods.subscription_id,
        subscription_periods.customer_id,
        plan_charges.charge_id,
        plan_charges.meter_id,
        plan_charges.dimension_value,
        plan_charges.charge_model,
        plan_charges.display_name,
        meters.unit_name,
        plan_charges.quantity_rounding,
        ---------- numerics
        plan_charges.unit_price,
        plan_charges.package_size,
        plan_charges.free_units,
        plan_charges.quantity_divisor,
        plan_charges.quantity_precision,
        plan_charges.min_amount,
        plan_charges.max_amount,
        plan_charges.rate_percent,
        {# A percentage charge's amount is its events' fees (D76); no usage, no fee. #}
        case
            when plan_charges.charge_model = 'percentage'
                then coalesce(usage_per_charge.percentage_fee, 0)
        end as percentage_fee,
        coalesce(usage_per_charge.is_fee_out_of_range, false) as is_fee_out_of_range,
        {{ round_money('plan_charges.max_amount', 'subscription_periods.minor_units') }}
            as max_amount_rounded,
        {# The per-charge minimum is prorated like the base fee, over the paid days
           (architecture §6.4 step 3, D82). #}
        {{ round_money(
            divide_and_round(
                'plan_charges.min_amount * subscription_periods.paid_days',
                'subscription_periods.days_in_period', '9', "'half_up'"
            ),
            'subscription_periods.minor_units'
        ) }} as min_amount_prorated,
        coalesce(usage_per_charge.aggregate_quantity, 0) as aggregate_quantity,
        coalesce(usage_per_charge.event_count, 0) as event_count,
        coalesce(usage_per_charge.aggregate_quantity, 0) < 0 as has_negative_quantity,
        ---------- dates
        subscription_periods.billing_period_start
    from subscription_periods
    inner join scenarios
        on subscription_periods.subscription_period_id = scenarios.subscription_period_id
    inner join plan_charges
        on subscription_periods.plan_id = plan_charges.plan_id
    inner join meters
        on plan_charges.meter_id = meters.meter_id
    left join usage_per_charge
        on
            scenarios.scenario = usage_per_charge.scenario
            and subscription_periods.subscription_id = usage_per_charge.subscription_id
            and subscription_periods.billing_period_start = usage_per_charge.billing_period_start
            and plan_charges.charge_id = usage_per_charge.charge_id

),

quantities_transformed as (

    select
        *,
        {# A negative period quantity is billed as zero and reported (architecture §6.3). A period
           aggregate beyond the supported range (README) is not rated: its invoice is held
           (int_invoices_calculated) instead of the build overflowing for everyone. #}
        abs(aggregate_quantity) >= {{ max_quantity() }} as is_quantity_out_of_range,
        case
            when abs(aggregate_quantity) < {{ max_quantity() }}
                then {{ transform_quantity(
                    'greatest(aggregate_quantity, 0)',
                    'quantity_divisor',
                    'quantity_precision',
                    'quantity_rounding'
                ) }}
        end as quantity
    from charges_per_period

)

select * from quantities_transformed
