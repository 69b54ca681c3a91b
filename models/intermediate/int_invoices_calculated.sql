{#
    The open invoices as they stand at `as_of`: sums of their rounded lines, tax rounded once
    per invoice (DESIGN 6.4), and when each becomes final (period end + the customer's grace
    hours). Finalized invoices are not here: they live in the ledger and never change.
#}
with

invoice_lines as (

    select * from {{ ref('int_invoice_lines_assembled') }}

),

customers as (

    select * from {{ ref('customers') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

lines_per_invoice as (

    select
        invoice_id,
        customer_id,
        billing_period_start,
        billing_period_end,
        currency,
        sum(amount) as subtotal_amount,
        count(*) as line_item_count
    from invoice_lines
    group by invoice_id, customer_id, billing_period_start, billing_period_end, currency

),

invoices_calculated as (

    select
        ---------- ids
        lines_per_invoice.invoice_id,
        lines_per_invoice.customer_id,
        customers.customer_name,
        ---------- money
        lines_per_invoice.currency,
        currencies.minor_units as currency_minor_units,
        lines_per_invoice.subtotal_amount,
        cast(0 as decimal(38, 4)) as discount_amount,
        {# Tax on what is owed before credits, never on a negative amount. #}
        {{ round_money(
            'greatest(lines_per_invoice.subtotal_amount, 0) * customers.tax_rate',
            'currencies.minor_units'
        ) }} as tax_amount,
        cast(0 as decimal(38, 4)) as credits_applied_amount,
        customers.tax_rate,
        lines_per_invoice.line_item_count,
        ---------- dates
        lines_per_invoice.billing_period_start,
        lines_per_invoice.billing_period_end,
        lines_per_invoice.billing_period_end + to_hours(
            coalesce(
                customers.invoice_grace_hours, {{ var('default_invoice_grace_hours') }}
            )
        ) as finalizes_at
    from lines_per_invoice
    inner join customers
        on lines_per_invoice.customer_id = customers.customer_id
    inner join currencies
        on lines_per_invoice.currency = currencies.currency

)

select * from invoices_calculated
