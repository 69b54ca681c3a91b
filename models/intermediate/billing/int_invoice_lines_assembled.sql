{#
    Every line of every open invoice, in the order of architecture §6.4: base fees prorated by
    active days, usage lines (one per tier of a graduated charge), the minimum-commitment
    true-up, and adjustments for periods already billed on a finalized invoice (late usage
    and reversals: the period rated now minus the period as that invoice saw it, both with
    today's rate card), placed on the customer's next open invoice. Each amount is rounded
    here, once, to the currency's minor units; invoices only add rounded lines up.
#}
with

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

charges_rated as (

    select * from {{ ref('int_charges_rated') }}

),

periods_billed as (

    select * from {{ ref('int_invoice_periods_billed') }}

),

invoices_voided as (

    select * from {{ ref('int_invoices_voided') }}

),

invoice_revisions as (

    {# A period whose invoice was voided is reissued as revision n (its n-th void), with
       ids of its own (DECISIONLOG D48); a period never voided keeps revision 0 and the
       ids it always had. #}
    select
        customer_id,
        billing_period_start,
        '|r' || cast(max(void_sequence) as varchar) as revision_key
    from invoices_voided
    group by customer_id, billing_period_start

),


subscription_periods_priced as (

    select
        subscription_periods.*,
        periods_billed.customer_id is not null as is_billed
    from subscription_periods
    left join periods_billed
        on
            subscription_periods.customer_id = periods_billed.customer_id
            and subscription_periods.billing_period_start = periods_billed.billing_period_start

),

open_invoice_periods as (

    select distinct
        customer_id,
        billing_period_start
    from subscription_periods_priced
    where not is_billed

),

usage_lines_rated as (

    select
        charges_rated.*,
        subscription_periods_priced.is_billed,
        {# A line beyond the supported range has no amount: rated as 0 and its customer's
           invoices are held (int_invoices_calculated). #}
        {{ round_money(
            'coalesce(charges_rated.amount_unrounded, 0)', 'subscription_periods_priced.minor_units'
        ) }} as amount
    from charges_rated
    inner join subscription_periods_priced
        on charges_rated.subscription_period_id = subscription_periods_priced.subscription_period_id

),

charge_totals_by_scenario as (

    {# A charge's amount after its multiplier, capped at max_amount by a negative
       charge_maximum line, then raised to min_amount (prorated like the base fee) by a
       charge_minimum line (architecture §6.3, 6.4 step 3). #}
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
    from usage_lines_rated
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

charge_totals as (

    select
        *,
        usage_amount + maximum_amount + minimum_amount as charge_amount
    from charge_limits

),

usage_per_scenario as (

    select
        subscription_period_id,
        scenario,
        sum(charge_amount) as usage_amount
    from charge_totals
    group by subscription_period_id, scenario

),

commitments_by_scenario as (

    {# The invoice is max(commitment, usage): the shortfall is its own line. #}
    select
        subscription_periods_priced.subscription_period_id,
        scenarios.scenario,
        subscription_periods_priced.is_billed,
        coalesce(usage_per_scenario.usage_amount, 0) as usage_amount,
        greatest(
            subscription_periods_priced.commitment_amount
            - coalesce(usage_per_scenario.usage_amount, 0),
            0
        ) as true_up_amount
    from subscription_periods_priced
    cross join (values ('current'), ('billed')) as scenarios (scenario)
    left join usage_per_scenario
        on
            subscription_periods_priced.subscription_period_id
            = usage_per_scenario.subscription_period_id
            and scenarios.scenario = usage_per_scenario.scenario
    where
        subscription_periods_priced.minimum_commitment is not null
        and (scenarios.scenario = 'current' or subscription_periods_priced.is_billed)

),

base_fee_lines as (

    select
        subscription_period_id,
        cast(null as date) as source_period_start,
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
    where base_fee is not null and not is_billed

),

usage_lines as (

    select
        subscription_period_id,
        cast(null as date) as source_period_start,
        'usage' as line_type,
        2 as line_order,
        charge_id,
        meter_id,
        dimension_value,
        tier,
        charge_model,
        line_quantity as quantity,
        line_unit_price as unit_price,
        amount,
        event_count,
        display_name
        || case
            when charge_model = 'graduated' then ' (tier ' || tier || ')'
            when charge_model in ('volume', 'staircase') then ' (tier ' || tier || ', all units)'
            else ''
        end
        || case
            when has_negative_quantity then ' [negative usage billed as 0]'
            else ''
        end as description
    from usage_lines_rated
    where scenario = 'current' and not is_billed

),

charge_limit_lines as (

    select
        charge_totals.subscription_period_id,
        cast(null as date) as source_period_start,
        limits.line_type,
        3 as line_order,
        charge_totals.charge_id,
        charge_totals.meter_id,
        charge_totals.dimension_value,
        cast(null as integer) as tier,
        charge_totals.charge_model,
        cast(null as decimal(38, 9)) as quantity,
        cast(null as decimal(38, 13)) as unit_price,
        case limits.line_type
            when 'charge_maximum' then charge_totals.maximum_amount
            else charge_totals.minimum_amount
        end as amount,
        cast(null as bigint) as event_count,
        charge_totals.display_name
        || case limits.line_type
            when 'charge_maximum'
                then ': capped at its maximum of ' || charge_totals.max_amount_rounded
            else ': raised to its minimum of ' || charge_totals.min_amount_prorated
        end as description
    from charge_totals
    cross join (values ('charge_maximum'), ('charge_minimum')) as limits (line_type)
    where
        charge_totals.scenario = 'current'
        and not charge_totals.is_billed
        and case limits.line_type
            when 'charge_maximum' then charge_totals.maximum_amount
            else charge_totals.minimum_amount
        end != 0

),

commitment_lines as (

    select
        commitments_by_scenario.subscription_period_id,
        cast(null as date) as source_period_start,
        'minimum_commitment' as line_type,
        4 as line_order,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        cast(null as integer) as tier,
        cast(null as varchar) as charge_model,
        subscription_periods_priced.active_fraction as quantity,
        subscription_periods_priced.minimum_commitment as unit_price,
        commitments_by_scenario.true_up_amount as amount,
        cast(null as bigint) as event_count,
        'Minimum commitment true-up (commitment '
        || subscription_periods_priced.commitment_amount
        || ', usage ' || commitments_by_scenario.usage_amount || ')' as description
    from commitments_by_scenario
    inner join subscription_periods_priced
        on
            commitments_by_scenario.subscription_period_id
            = subscription_periods_priced.subscription_period_id
    where
        commitments_by_scenario.scenario = 'current'
        and not commitments_by_scenario.is_billed
        and commitments_by_scenario.true_up_amount > 0

),

usage_per_charge_by_scenario as (

    select
        subscription_period_id,
        charge_id,
        scenario,
        meter_id,
        dimension_value,
        charge_model,
        display_name,
        quantity,
        charge_amount as amount
    from charge_totals
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
        current_side.amount - billed_side.amount as amount
    from usage_per_charge_by_scenario as current_side
    inner join usage_per_charge_by_scenario as billed_side
        on
            current_side.subscription_period_id = billed_side.subscription_period_id
            and current_side.charge_id = billed_side.charge_id
            and billed_side.scenario = 'billed'
    where current_side.scenario = 'current' and current_side.amount != billed_side.amount

),

commitment_adjustments as (

    select
        current_side.subscription_period_id,
        current_side.true_up_amount - billed_side.true_up_amount as amount
    from commitments_by_scenario as current_side
    inner join commitments_by_scenario as billed_side
        on
            current_side.subscription_period_id = billed_side.subscription_period_id
            and billed_side.scenario = 'billed'
    where
        current_side.scenario = 'current'
        and current_side.true_up_amount != billed_side.true_up_amount

),

adjustment_lines as (

    select
        usage_adjustments.subscription_period_id,
        subscription_periods_priced.billing_period_start as source_period_start,
        'adjustment' as line_type,
        5 as line_order,
        usage_adjustments.charge_id,
        usage_adjustments.meter_id,
        usage_adjustments.dimension_value,
        cast(null as integer) as tier,
        usage_adjustments.charge_model,
        usage_adjustments.quantity,
        cast(null as decimal(38, 13)) as unit_price,
        usage_adjustments.amount,
        cast(null as bigint) as event_count,
        usage_adjustments.display_name || ': correction to '
        || strftime(subscription_periods_priced.billing_period_start, '%Y-%m')
        || ' (late usage or reversals)' as description
    from usage_adjustments
    inner join subscription_periods_priced
        on
            usage_adjustments.subscription_period_id
            = subscription_periods_priced.subscription_period_id
    union all
    select
        commitment_adjustments.subscription_period_id,
        subscription_periods_priced.billing_period_start as source_period_start,
        'adjustment' as line_type,
        5 as line_order,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        cast(null as integer) as tier,
        cast(null as varchar) as charge_model,
        cast(null as decimal(38, 9)) as quantity,
        cast(null as decimal(38, 13)) as unit_price,
        commitment_adjustments.amount,
        cast(null as bigint) as event_count,
        'Minimum commitment true-up: correction to '
        || strftime(subscription_periods_priced.billing_period_start, '%Y-%m') as description
    from commitment_adjustments
    inner join subscription_periods_priced
        on
            commitment_adjustments.subscription_period_id
            = subscription_periods_priced.subscription_period_id

),

all_lines as (

    select * from base_fee_lines
    union all
    select * from usage_lines
    union all
    select * from charge_limit_lines
    union all
    select * from commitment_lines
    union all
    select * from adjustment_lines

),

next_open_invoices as (

    {# An adjustment goes on the customer's first open invoice after the period it corrects. #}
    select
        billed_periods.customer_id,
        billed_periods.billing_period_start as source_period_start,
        min(open_invoice_periods.billing_period_start) as invoice_period_start
    from subscription_periods_priced as billed_periods
    inner join open_invoice_periods
        on
            billed_periods.customer_id = open_invoice_periods.customer_id
            and billed_periods.billing_period_start < open_invoice_periods.billing_period_start
    where billed_periods.is_billed
    group by billed_periods.customer_id, billed_periods.billing_period_start

),

lines_placed as (

    select
        all_lines.*,
        subscription_periods_priced.customer_id,
        subscription_periods_priced.subscription_id,
        subscription_periods_priced.plan_id,
        subscription_periods_priced.customer_currency as currency,
        case
            when all_lines.source_period_start is null
                then subscription_periods_priced.billing_period_start
            else next_open_invoices.invoice_period_start
        end as invoice_period_start
    from all_lines
    inner join subscription_periods_priced
        on all_lines.subscription_period_id = subscription_periods_priced.subscription_period_id
    left join next_open_invoices
        on
            subscription_periods_priced.customer_id = next_open_invoices.customer_id
            and all_lines.source_period_start = next_open_invoices.source_period_start

),

lines_revised as (

    select
        lines_placed.*,
        coalesce(invoice_revisions.revision_key, '') as revision_key
    from lines_placed
    left join invoice_revisions
        on
            lines_placed.customer_id = invoice_revisions.customer_id
            and lines_placed.invoice_period_start = invoice_revisions.billing_period_start

),

lines_with_invoice_keys as (

    select
        ---------- ids
        'inv_' || left(md5(
            customer_id || '|' || invoice_period_start || revision_key
        ), 20) as invoice_id,
        'ili_' || left(md5(
            customer_id
            || '|' || invoice_period_start
            || revision_key
            || '|' || subscription_period_id
            || '|' || line_type
            || '|' || coalesce(charge_id, '')
            || '|' || coalesce(cast(tier as varchar), '')
            || '|' || coalesce(cast(source_period_start as varchar), '')
        ), 20) as invoice_line_item_id,
        customer_id,
        subscription_id,
        plan_id,
        charge_id,
        meter_id,
        dimension_value,
        ---------- attributes
        line_type,
        line_order,
        charge_model,
        tier,
        description,
        currency,
        ---------- numerics
        quantity,
        unit_price,
        amount,
        event_count,
        ---------- dates
        invoice_period_start as billing_period_start,
        cast(invoice_period_start + interval 1 month as date) as billing_period_end,
        source_period_start
    from lines_revised
    {# An adjustment with no later open invoice waits (D20) until the customer has one. #}
    where invoice_period_start is not null

),

invoice_subtotals as (

    select
        invoice_id,
        customer_id,
        currency,
        billing_period_start,
        billing_period_end,
        sum(amount) as subtotal_amount
    from lines_with_invoice_keys
    group by invoice_id, customer_id, currency, billing_period_start, billing_period_end

),

credit_note_lines as (

    {# An invoice never asks for a negative amount (DECISIONLOG D35): when corrections
       exceed what is due, a credit_note line brings its subtotal to zero and the excess
       becomes a customer balance that the customer's next invoices spend
       (int_credit_applications). #}
    select
        invoice_id,
        'ili_' || left(md5(invoice_id || '|credit_note'), 20) as invoice_line_item_id,
        customer_id,
        cast(null as varchar) as subscription_id,
        cast(null as varchar) as plan_id,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        'credit_note' as line_type,
        6 as line_order,
        cast(null as varchar) as charge_model,
        cast(null as integer) as tier,
        'Credit note: ' || cast(-subtotal_amount as varchar) || ' ' || currency
        || ' carried to the customer balance' as description,
        currency,
        cast(null as decimal(38, 9)) as quantity,
        cast(null as decimal(38, 13)) as unit_price,
        -subtotal_amount as amount,
        cast(null as bigint) as event_count,
        billing_period_start,
        billing_period_end,
        cast(null as date) as source_period_start
    from invoice_subtotals
    where subtotal_amount < 0

),

all_invoice_lines as (

    select * from lines_with_invoice_keys
    union all
    select * from credit_note_lines

)

select * from all_invoice_lines
