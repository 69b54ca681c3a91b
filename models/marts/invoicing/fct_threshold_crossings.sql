{#
    Every usage threshold (usage_thresholds.csv) a customer's invoice has reached: the
    billing period's quantity of a meter, or the invoice's spend (its subtotal), at or above
    the threshold. One row per threshold and invoice; a draft shows the running period as
    it stands at `as_of`. A finalized invoice's spend is its ledger subtotal; its usage is
    the period's usage now (late events included), so a finalized month can show a crossing
    after it was billed. While its invoice is a draft, a row raises one `usage_threshold`
    alert (billing/alerts.py, DECISIONLOG D78).
#}
with

usage_thresholds as (

    select * from {{ ref('usage_thresholds') }}

),

meters as (

    select * from {{ ref('meters') }}

),

invoices as (

    select * from {{ ref('fct_invoices') }}

),

usage_per_period as (

    select * from {{ ref('int_usage_aggregated_to_periods') }}
    where meter_id is not null

),

meter_usage_per_period as (

    {# A meter's quantity for the customer's period: its dimension values' sum for count
       and sum meters, the largest for max, the smallest for min; a meter without a
       dimension has one row (a rate-card check refuses the other meters with one). #}
    select
        usage_per_period.customer_id,
        usage_per_period.billing_period_start,
        usage_per_period.meter_id,
        case
            when meters.aggregation = 'max' then max(usage_per_period.aggregate_quantity)
            when meters.aggregation = 'min' then min(usage_per_period.aggregate_quantity)
            else sum(usage_per_period.aggregate_quantity)
        end as period_quantity
    from usage_per_period
    inner join meters
        on usage_per_period.meter_id = meters.meter_id
    group by
        usage_per_period.customer_id,
        usage_per_period.billing_period_start,
        usage_per_period.meter_id,
        meters.aggregation

),

thresholds_measured as (

    select
        usage_thresholds.threshold_id,
        usage_thresholds.customer_id,
        usage_thresholds.meter_id,
        invoices.invoice_id,
        invoices.status as invoice_status,
        case when usage_thresholds.meter_id is null then 'spend' else 'usage' end
            as threshold_kind,
        case
            when usage_thresholds.meter_id is null then invoices.currency
            else meters.unit_name
        end as threshold_unit,
        case
            when usage_thresholds.meter_id is null then invoices.currency_minor_units
        end as currency_minor_units,
        usage_thresholds.threshold,
        cast(case
            when usage_thresholds.meter_id is null then invoices.subtotal_amount
            else coalesce(meter_usage_per_period.period_quantity, 0)
        end as decimal(38, 9)) as observed_value,
        invoices.billing_period_start,
        invoices.billing_period_end
    from usage_thresholds
    inner join invoices
        on usage_thresholds.customer_id = invoices.customer_id
    left join meters
        on usage_thresholds.meter_id = meters.meter_id
    left join meter_usage_per_period
        on
            invoices.customer_id = meter_usage_per_period.customer_id
            and invoices.billing_period_start = meter_usage_per_period.billing_period_start
            and usage_thresholds.meter_id = meter_usage_per_period.meter_id

),

crossings as (

    select
        ---------- ids
        threshold_id || ':' || strftime(billing_period_start, '%Y-%m') as threshold_crossing_id,
        threshold_id,
        customer_id,
        meter_id,
        invoice_id,
        ---------- strings
        threshold_kind,
        threshold_unit,
        invoice_status,
        ---------- numerics
        currency_minor_units,
        threshold,
        observed_value,
        ---------- dates
        billing_period_start,
        billing_period_end
    from thresholds_measured
    {#- A held invoice has no subtotal: it reaches nothing until it is priced. #}
    where observed_value >= threshold

)

select * from crossings
