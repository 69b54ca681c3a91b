{#
    The invoice identities of architecture §5, read from the check model both this test and
    the Great Expectations `invoices` suite use (models/checks/chk_invoice_identities.sql):
    subtotal = sum of line amounts, line_item_count = lines, total = subtotal - discount +
    tax - credits (macro invoice_total), every amount in the currency's minor units, invoice
    currency = customer currency, and exactly one invoice per customer and period with an
    active subscription. Line amounts in minor units are checked here too. One row per
    violation.
#}
{# Orchestration shows this test as a check on the model it is about. #}
{{ config(meta={'dagster': {'ref': {'name': 'fct_invoices'}}}) }}

with

identities as (

    select * from {{ ref('chk_invoice_identities') }}

),

line_items as (

    select * from {{ ref('fct_invoice_line_items') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

invoice_problems as (

    select
        check_row_id as invoice_id,
        case
            when invoice_id is null
                then 'no invoice for an active subscription in ' || billing_period_start
            when not has_active_subscription then 'invoice without an active subscription'
            when subtotal_difference != 0 then 'subtotal differs from the sum of its lines'
            when line_count_difference != 0 then 'line_item_count differs from its lines'
            when total_difference != 0 then 'total differs from subtotal - discount + tax - credits'
            when currency != customer_currency
                then 'invoice currency differs from the customer currency'
            when rounding_remainder != 0 then 'invoice amount not rounded to minor units'
        end as problem
    from identities

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

all_problems as (

    select * from invoice_problems
    where problem is not null
    union all
    select * from line_problems

)

select * from all_problems
