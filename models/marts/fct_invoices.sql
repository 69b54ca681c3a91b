{#
    One invoice per customer and billing period with an active subscription. Amounts are
    sums of rounded lines; tax is rounded once per invoice (DESIGN 6.4). An invoice is
    `draft` until its period end plus the customer's grace hours has passed at `as_of`.
#}
with

line_items as (

    select * from {{ ref('fct_invoice_line_items') }}

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
    from line_items
    group by invoice_id, customer_id, billing_period_start, billing_period_end, currency

),

invoices_taxed as (

    select
        lines_per_invoice.*,
        customers.customer_name,
        customers.tax_rate,
        currencies.minor_units as currency_minor_units,
        cast(0 as decimal(38, 4)) as discount_amount,
        cast(0 as decimal(38, 4)) as credits_applied_amount,
        {# Tax on what is owed before credits, never on a negative amount. #}
        {{ round_money(
            'greatest(lines_per_invoice.subtotal_amount, 0) * customers.tax_rate',
            'currencies.minor_units'
        ) }} as tax_amount,
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

),

invoices as (

    select
        ---------- ids
        invoice_id,
        'INV-' || strftime(billing_period_start, '%Y-%m') || '-'
        || lpad(
            cast(
                row_number() over (partition by billing_period_start order by customer_id)
                as varchar
            ),
            6,
            '0'
        ) as invoice_number,
        customer_id,
        customer_name,
        ---------- dates
        billing_period_start,
        billing_period_end,
        ---------- money
        currency,
        currency_minor_units,
        cast(subtotal_amount as decimal(38, 4)) as subtotal_amount,
        discount_amount,
        tax_amount,
        credits_applied_amount,
        cast(
            subtotal_amount - discount_amount + tax_amount - credits_applied_amount
            as decimal(38, 4)
        ) as total_amount,
        tax_rate,
        ---------- status
        case
            when {{ as_of_timestamp() }} >= finalizes_at then 'finalized' else 'draft'
        end as status,
        case when {{ as_of_timestamp() }} >= finalizes_at then finalizes_at end as finalized_at,
        line_item_count
    from invoices_taxed

)

select * from invoices
