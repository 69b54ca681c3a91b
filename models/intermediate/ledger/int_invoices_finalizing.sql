{#
    The invoice headers this build finalizes, one per invoice in
    int_invoice_lines_finalizing, made from those lines (which carry the invoice's discount,
    tax and credits). The invoice number is assigned here, once: the next number of its
    period after those the ledger already holds, in customer order among the invoices
    finalized together. Ledger rows are never updated, so numbers never move or repeat.
    The payment terms are frozen here too (D79): issued on the day it is final, due the
    customer's net terms later; editing the terms afterwards moves no due date.
#}
with

ledger_lines as (

    select * from {{ ref('int_invoice_lines_finalizing') }}

),

customers as (

    select
        customer_id,
        customer_name,
        tax_rate,
        cast(
            coalesce(net_terms_days, {{ var('default_net_terms_days') }}) as integer
        ) as net_terms_days
    from {{ ref('customers') }}

),

currencies as (

    select * from {{ ref('currencies') }}

),

already_finalized as (

    select * from {{ source('ledger', 'fct_invoices_finalized') }}

),

numbers_used as (

    select
        billing_period_start,
        max(invoice_sequence) as last_sequence
    from already_finalized
    group by billing_period_start

),

lines_per_invoice as (

    select
        invoice_id,
        customer_id,
        billing_period_start,
        billing_period_end,
        currency,
        sum(amount) as subtotal_amount,
        count(*) as line_item_count,
        any_value(invoice_discount_amount) as discount_amount,
        any_value(invoice_tax_amount) as tax_amount,
        any_value(invoice_credits_applied_amount) as credits_applied_amount,
        any_value(invoice_finalized_at) as finalized_at,
        max(billed_through_file_id) as billed_through_file_id,
        max(recorded_at) as recorded_at
    from ledger_lines
    group by invoice_id, customer_id, billing_period_start, billing_period_end, currency

),

invoices_numbered as (

    select
        lines_per_invoice.*,
        coalesce(numbers_used.last_sequence, 0)
        + row_number() over (
            partition by lines_per_invoice.billing_period_start
            order by lines_per_invoice.customer_id
        ) as invoice_sequence
    from lines_per_invoice
    left join numbers_used
        on lines_per_invoice.billing_period_start = numbers_used.billing_period_start

),

invoices_finalized as (

    select
        ---------- ids
        invoices_numbered.invoice_id,
        'INV-' || strftime(invoices_numbered.billing_period_start, '%Y-%m') || '-'
        || lpad(cast(invoices_numbered.invoice_sequence as varchar), 6, '0') as invoice_number,
        invoices_numbered.customer_id,
        customers.customer_name,
        ---------- dates
        invoices_numbered.billing_period_start,
        invoices_numbered.billing_period_end,
        ---------- money
        invoices_numbered.currency,
        currencies.minor_units as currency_minor_units,
        cast(invoices_numbered.subtotal_amount as decimal(38, 4)) as subtotal_amount,
        invoices_numbered.discount_amount,
        invoices_numbered.tax_amount,
        invoices_numbered.credits_applied_amount,
        customers.tax_rate,
        ---------- finality
        invoices_numbered.finalized_at,
        cast(invoices_numbered.finalized_at as date) as issued_on,
        customers.net_terms_days,
        cast(invoices_numbered.finalized_at as date) + customers.net_terms_days as due_on,
        invoices_numbered.recorded_at,
        invoices_numbered.billed_through_file_id,
        cast(invoices_numbered.invoice_sequence as bigint) as invoice_sequence,
        invoices_numbered.line_item_count,
        {# The dbt run that computed the row: finalization takes only its own run's. #}
        {{ run_build_id() }} as build_id
    from invoices_numbered
    inner join customers
        on invoices_numbered.customer_id = customers.customer_id
    inner join currencies
        on invoices_numbered.currency = currencies.currency

),

invoices_totalled as (

    select
        *,
        cast({{ invoice_total(
            'subtotal_amount', 'discount_amount', 'tax_amount', 'credits_applied_amount'
        ) }} as decimal(38, 4)) as total_amount
    from invoices_finalized

)

select * from invoices_totalled
