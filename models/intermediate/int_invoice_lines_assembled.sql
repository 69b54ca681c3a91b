{#
    Every invoice line of every customer and period, in the order of DESIGN 6.4: base fees
    prorated by active days, usage lines (one per tier of a graduated charge) and the
    minimum-commitment true-up. Each amount is rounded here, once, to the currency's minor
    units; invoices only add rounded lines up.
#}
with

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

charges_rated as (

    select * from {{ ref('int_charges_rated') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

subscription_periods_priced as (

    select
        subscription_periods.*,
        currencies.minor_units,
        {{ divide_and_round(
            'subscription_periods.active_days', 'subscription_periods.days_in_period',
            '9', "'half_up'"
        ) }} as active_fraction,
        {{ round_money(
            divide_and_round(
                'subscription_periods.base_fee * subscription_periods.active_days',
                'subscription_periods.days_in_period', '9', "'half_up'"
            ),
            'currencies.minor_units'
        ) }} as base_fee_amount,
        {{ round_money(
            divide_and_round(
                'subscription_periods.minimum_commitment * subscription_periods.active_days',
                'subscription_periods.days_in_period', '9', "'half_up'"
            ),
            'currencies.minor_units'
        ) }} as commitment_amount
    from subscription_periods
    inner join currencies
        on subscription_periods.customer_currency = currencies.currency

),

base_fee_lines as (

    select
        subscription_period_id,
        'base_fee' as line_type,
        1 as line_order,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        cast(null as integer) as tier,
        cast(null as varchar) as charge_model,
        active_fraction as quantity,
        base_fee as unit_price,
        base_fee_amount as amount,
        cast(null as bigint) as event_count,
        plan_name || ' base fee'
        || case
            when active_days < days_in_period
                then ' (' || active_days || ' of ' || days_in_period || ' days)'
            else ''
        end as description
    from subscription_periods_priced
    where base_fee is not null

),

usage_lines as (

    select
        charges_rated.subscription_period_id,
        'usage' as line_type,
        2 as line_order,
        charges_rated.charge_id,
        charges_rated.meter_id,
        charges_rated.dimension_value,
        charges_rated.tier,
        charges_rated.charge_model,
        charges_rated.line_quantity as quantity,
        charges_rated.line_unit_price as unit_price,
        {{ round_money(
            'charges_rated.amount_unrounded', 'subscription_periods_priced.minor_units'
        ) }} as amount,
        charges_rated.event_count,
        charges_rated.display_name
        || case
            when charges_rated.charge_model = 'graduated'
                then ' (tier ' || charges_rated.tier || ')'
            when charges_rated.charge_model in ('volume', 'staircase')
                then ' (tier ' || charges_rated.tier || ', all units)'
            else ''
        end
        || case
            when charges_rated.has_negative_quantity then ' [negative usage billed as 0]'
            else ''
        end as description
    from charges_rated
    inner join subscription_periods_priced
        on charges_rated.subscription_period_id = subscription_periods_priced.subscription_period_id

),

usage_per_subscription_period as (

    select
        subscription_period_id,
        sum(amount) as usage_amount
    from usage_lines
    group by subscription_period_id

),

commitment_lines as (

    {# The invoice is max(commitment, usage): the shortfall is its own line. #}
    select
        subscription_periods_priced.subscription_period_id,
        'minimum_commitment' as line_type,
        4 as line_order,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        cast(null as integer) as tier,
        cast(null as varchar) as charge_model,
        subscription_periods_priced.active_fraction as quantity,
        subscription_periods_priced.minimum_commitment as unit_price,
        subscription_periods_priced.commitment_amount
        - coalesce(usage_per_subscription_period.usage_amount, 0) as amount,
        cast(null as bigint) as event_count,
        'Minimum commitment true-up (commitment '
        || subscription_periods_priced.commitment_amount
        || ', usage ' || coalesce(usage_per_subscription_period.usage_amount, 0) || ')'
            as description
    from subscription_periods_priced
    left join usage_per_subscription_period
        on
            subscription_periods_priced.subscription_period_id
            = usage_per_subscription_period.subscription_period_id
    where
        subscription_periods_priced.minimum_commitment is not null
        and coalesce(usage_per_subscription_period.usage_amount, 0)
        < subscription_periods_priced.commitment_amount

),

all_lines as (

    select * from base_fee_lines
    union all
    select * from usage_lines
    union all
    select * from commitment_lines

),

lines_with_invoice_keys as (

    select
        ---------- ids
        'inv_' || left(md5(
            subscription_periods_priced.customer_id
            || '|' || subscription_periods_priced.billing_period_start
        ), 20) as invoice_id,
        'ili_' || left(md5(
            subscription_periods_priced.customer_id
            || '|' || subscription_periods_priced.billing_period_start
            || '|' || all_lines.subscription_period_id
            || '|' || all_lines.line_type
            || '|' || coalesce(all_lines.charge_id, '')
            || '|' || coalesce(cast(all_lines.tier as varchar), '')
        ), 20) as invoice_line_item_id,
        subscription_periods_priced.customer_id,
        subscription_periods_priced.subscription_id,
        subscription_periods_priced.plan_id,
        all_lines.charge_id,
        all_lines.meter_id,
        all_lines.dimension_value,
        ---------- attributes
        all_lines.line_type,
        all_lines.line_order,
        all_lines.charge_model,
        all_lines.tier,
        all_lines.description,
        subscription_periods_priced.customer_currency as currency,
        ---------- numerics
        all_lines.quantity,
        all_lines.unit_price,
        all_lines.amount,
        all_lines.event_count,
        ---------- dates
        subscription_periods_priced.billing_period_start,
        subscription_periods_priced.billing_period_end,
        cast(null as date) as source_period_start
    from all_lines
    inner join subscription_periods_priced
        on all_lines.subscription_period_id = subscription_periods_priced.subscription_period_id

)

select * from lines_with_invoice_keys
