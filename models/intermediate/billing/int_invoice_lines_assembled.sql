{#
    Every line of every open invoice, in the order of architecture §6.4: base fees prorated by
    paid days (a trial's days are a zero line, D82), usage lines (one per tier of a graduated charge), charge maximum/minimum
    lines, the minimum-commitment true-up, and adjustments for periods already billed on a
    finalized invoice, placed on the customer's next open invoice; then a credit note when
    corrections exceed what is due. Each rule lives in its own model (rounding:
    int_usage_lines_rounded; limits: int_charge_limits_applied; commitment:
    int_commitment_true_ups; adjustments: int_invoice_adjustments); this one assembles,
    places and numbers their lines. Invoices only add rounded lines up.
#}
with

subscription_periods_billed as (

    select * from {{ ref('int_subscription_periods_billed') }}

),

usage_lines_rounded as (

    select * from {{ ref('int_usage_lines_rounded') }}

),

charge_limits_applied as (

    select * from {{ ref('int_charge_limits_applied') }}

),

commitment_true_ups as (

    select * from {{ ref('int_commitment_true_ups') }}

),

invoice_adjustments as (

    select * from {{ ref('int_invoice_adjustments') }}

),

invoices_voided as (

    select * from {{ ref('int_invoices_voided') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

invoice_revisions as (

    {# A period whose invoice was voided is reissued as revision n (its n-th void), with
       ids of its own (DECISIONLOG D48); a period never voided keeps revision 0 and the
       ids it always had. #}
    select
        customer_id,
        billing_period_start,
        '|r' || cast(void_sequence as varchar) as revision_key
    from invoices_voided
    where is_latest_void_of_period

),

open_invoice_periods as (

    select distinct
        customer_id,
        billing_period_start
    from subscription_periods_billed
    where not is_billed

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
        paid_fraction as quantity,
        base_fee as unit_price,
        base_fee_amount as amount,
        cast(null as bigint) as event_count,
        plan_name || ' base fee'
        || case
            when paid_days < days_in_period
                then ' (' || paid_days || ' of ' || days_in_period || ' days)'
            else ''
        end as description
    from subscription_periods_billed
    {#- A period spent wholly in the trial has its trial line and no base fee (D82). #}
    where base_fee is not null and paid_days > 0 and not is_billed

),

trial_lines as (

    {# The trial's days in the period, shown at zero (D82). #}
    select
        subscription_period_id,
        cast(null as date) as source_period_start,
        'trial' as line_type,
        0 as line_order,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        cast(null as integer) as tier,
        cast(null as varchar) as charge_model,
        cast(trial_days_in_period as decimal(38, 9)) as quantity,
        cast(0 as decimal(38, 9)) as unit_price,
        cast(0 as decimal(38, 9)) as amount,
        cast(null as bigint) as event_count,
        plan_name || ' free trial (' || trial_days_in_period || ' of ' || days_in_period
        || ' days, through ' || strftime(
            {{ add_days('least(trial_until, active_until)', '-1') }}, '%Y-%m-%d'
        ) || ')' as description
    from subscription_periods_billed
    where trial_days_in_period > 0 and not is_billed

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
            when charge_model in ('graduated', 'graduated_percentage') then ' (tier ' || tier || ')'
            when charge_model in ('volume', 'staircase') then ' (tier ' || tier || ', all units)'
            else ''
        end
        || case
            when has_negative_quantity then ' [negative usage billed as 0]'
            else ''
        end as description
    from usage_lines_rounded
    where scenario = 'current' and not is_billed

),

charge_limit_lines as (

    select
        charge_limits_applied.subscription_period_id,
        cast(null as date) as source_period_start,
        limits.line_type,
        3 as line_order,
        charge_limits_applied.charge_id,
        charge_limits_applied.meter_id,
        charge_limits_applied.dimension_value,
        cast(null as integer) as tier,
        charge_limits_applied.charge_model,
        cast(null as decimal(38, 9)) as quantity,
        cast(null as decimal(38, 13)) as unit_price,
        case limits.line_type
            when 'charge_maximum' then charge_limits_applied.maximum_amount
            else charge_limits_applied.minimum_amount
        end as amount,
        cast(null as bigint) as event_count,
        charge_limits_applied.display_name
        || case limits.line_type
            when 'charge_maximum'
                then ': capped at its maximum of ' || {{ money_text(
                    'charge_limits_applied.max_amount_rounded', 'currencies.minor_units'
                ) }}
            else ': raised to its minimum of ' || {{ money_text(
                'charge_limits_applied.min_amount_prorated', 'currencies.minor_units'
            ) }}
        end as description
    from charge_limits_applied
    cross join (values ('charge_maximum'), ('charge_minimum')) as limits (line_type)
    inner join subscription_periods_billed
        on
            charge_limits_applied.subscription_period_id
            = subscription_periods_billed.subscription_period_id
    inner join currencies
        on subscription_periods_billed.customer_currency = currencies.currency
    where
        charge_limits_applied.scenario = 'current'
        and not charge_limits_applied.is_billed
        and case limits.line_type
            when 'charge_maximum' then charge_limits_applied.maximum_amount
            else charge_limits_applied.minimum_amount
        end != 0

),

commitment_lines as (

    select
        commitment_true_ups.subscription_period_id,
        cast(null as date) as source_period_start,
        'minimum_commitment' as line_type,
        4 as line_order,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        cast(null as integer) as tier,
        cast(null as varchar) as charge_model,
        subscription_periods_billed.paid_fraction as quantity,
        subscription_periods_billed.minimum_commitment as unit_price,
        commitment_true_ups.true_up_amount as amount,
        cast(null as bigint) as event_count,
        'Minimum commitment true-up (commitment '
        || {{ money_text(
            'subscription_periods_billed.commitment_amount', 'currencies.minor_units'
        ) }}
        || ', usage '
        || {{ money_text('commitment_true_ups.usage_amount', 'currencies.minor_units') }}
        || ')' as description
    from commitment_true_ups
    inner join subscription_periods_billed
        on
            commitment_true_ups.subscription_period_id
            = subscription_periods_billed.subscription_period_id
    inner join currencies
        on subscription_periods_billed.customer_currency = currencies.currency
    where
        commitment_true_ups.scenario = 'current'
        and not commitment_true_ups.is_billed
        and commitment_true_ups.true_up_amount > 0

),

adjustment_lines as (

    select
        subscription_period_id,
        source_period_start,
        'adjustment' as line_type,
        5 as line_order,
        charge_id,
        meter_id,
        dimension_value,
        cast(null as integer) as tier,
        charge_model,
        quantity,
        cast(null as decimal(38, 13)) as unit_price,
        amount,
        cast(null as bigint) as event_count,
        description
    from invoice_adjustments

),

all_lines as (

    select * from base_fee_lines
    union all
    select * from trial_lines
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
    from subscription_periods_billed as billed_periods
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
        subscription_periods_billed.customer_id,
        subscription_periods_billed.subscription_id,
        subscription_periods_billed.plan_id,
        subscription_periods_billed.customer_currency as currency,
        case
            when all_lines.source_period_start is null
                then subscription_periods_billed.billing_period_start
            else next_open_invoices.invoice_period_start
        end as invoice_period_start
    from all_lines
    inner join subscription_periods_billed
        on all_lines.subscription_period_id = subscription_periods_billed.subscription_period_id
    left join next_open_invoices
        on
            subscription_periods_billed.customer_id = next_open_invoices.customer_id
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
        invoice_subtotals.invoice_id,
        'ili_'
        || left(md5(invoice_subtotals.invoice_id || '|credit_note'), 20) as invoice_line_item_id,
        invoice_subtotals.customer_id,
        cast(null as varchar) as subscription_id,
        cast(null as varchar) as plan_id,
        cast(null as varchar) as charge_id,
        cast(null as varchar) as meter_id,
        cast(null as varchar) as dimension_value,
        'credit_note' as line_type,
        6 as line_order,
        cast(null as varchar) as charge_model,
        cast(null as integer) as tier,
        'Credit note: '
        || {{ money_text('-invoice_subtotals.subtotal_amount', 'currencies.minor_units') }}
        || ' ' || invoice_subtotals.currency
        || ' carried to the customer balance' as description,
        invoice_subtotals.currency,
        cast(null as decimal(38, 9)) as quantity,
        cast(null as decimal(38, 13)) as unit_price,
        -invoice_subtotals.subtotal_amount as amount,
        cast(null as bigint) as event_count,
        invoice_subtotals.billing_period_start,
        invoice_subtotals.billing_period_end,
        cast(null as date) as source_period_start
    from invoice_subtotals
    inner join currencies
        on invoice_subtotals.currency = currencies.currency
    where invoice_subtotals.subtotal_amount < 0

),

all_invoice_lines as (

    select * from lines_with_invoice_keys
    union all
    select * from credit_note_lines

)

select * from all_invoice_lines
