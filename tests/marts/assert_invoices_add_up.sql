{#
    The invoice identities of architecture §5 that span models: subtotal = sum of line amounts,
    line_item_count = lines, every amount already rounded to the currency's minor units,
    invoice currency = customer currency, and exactly one invoice per customer and period
    with an active subscription. One row per violation.
#}
{# Orchestration shows this test as a check on the model it is about. #}
{{ config(meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}

with

invoices as (

    select * from {{ ref('fct_invoices') }}

),

line_items as (

    select * from {{ ref('fct_invoice_line_items') }}

),

customers as (

    select * from {{ ref('customers') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

subscription_periods as (

    select * from {{ ref('int_subscriptions_prorated_to_periods') }}

),

lines_per_invoice as (

    select
        invoice_id,
        sum(amount) as line_amount,
        count(*) as line_count
    from line_items
    group by invoice_id

),

invoice_problems as (

    select
        invoices.invoice_id,
        case
            when lines_per_invoice.invoice_id is null then 'invoice without lines'
            when invoices.subtotal_amount != lines_per_invoice.line_amount
                then 'subtotal differs from the sum of its lines'
            when invoices.line_item_count != lines_per_invoice.line_count
                then 'line_item_count differs from its lines'
            when invoices.currency != customers.currency
                then 'invoice currency differs from the customer currency'
            when
                invoices.subtotal_amount
                != {{ round_money('invoices.subtotal_amount', 'currencies.minor_units') }}
                or invoices.tax_amount
                != {{ round_money('invoices.tax_amount', 'currencies.minor_units') }}
                or invoices.total_amount
                != {{ round_money('invoices.total_amount', 'currencies.minor_units') }}
                then 'invoice amount not rounded to minor units'
        end as problem
    from invoices
    inner join customers
        on invoices.customer_id = customers.customer_id
    inner join currencies
        on invoices.currency = currencies.currency
    left join lines_per_invoice
        on invoices.invoice_id = lines_per_invoice.invoice_id

),

line_problems as (

    select
        line_items.invoice_id,
        'line amount not rounded to minor units' as problem
    from line_items
    inner join currencies
        on line_items.currency = currencies.currency
    where line_items.amount != {{ round_money('line_items.amount', 'currencies.minor_units') }}

),

coverage_problems as (

    select
        coalesce(invoices.invoice_id, subscribed.customer_id) as invoice_id,
        case
            when invoices.invoice_id is null
                then 'no invoice for an active subscription in ' || subscribed.billing_period_start
            else 'invoice without an active subscription'
        end as problem
    from (
        select distinct
            customer_id,
            billing_period_start
        from subscription_periods
    ) as subscribed
    full outer join invoices
        on
            subscribed.customer_id = invoices.customer_id
            and subscribed.billing_period_start = invoices.billing_period_start
    where invoices.invoice_id is null or subscribed.customer_id is null

),

all_problems as (

    select * from invoice_problems
    where problem is not null
    union all
    select * from line_problems
    union all
    select * from coverage_problems

)

select * from all_problems
