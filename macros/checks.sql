{#
    An invoice's amount due, the one definition (architecture §6.4): subtotal less discount,
    plus tax, less credits. Models compute it with this macro and checks compare with it.
#}
{% macro invoice_total(subtotal, discount, tax, credits) -%}
    ({{ subtotal }} - {{ discount }} + {{ tax }} - {{ credits }})
{%- endmacro %}

{#
    One row per invoice of `invoices` (and, with `with_coverage`, per active customer period
    that lacks one), every identity as a difference that must be exactly zero: lines sum to
    the subtotal, the line count matches, the total follows from its parts, every amount is
    in the currency's minor units, the currency is the customer's. The check models
    (models/checks/) are this over the invoice marts and over the candidates about to be
    finalized; the dbt test assert_invoices_add_up and the Great Expectations invoice
    suites read them. The check models are views, so every relation is named without its
    catalog: a copy of the warehouse under another file name still reads its own tables.
#}
{% macro invoice_identities(invoices, lines, status, with_coverage) -%}
with

invoices as (

    select * from {{ invoices }}

),

lines as (

    select
        invoice_id,
        sum(amount) as line_amount,
        count(*) as line_count
    from {{ lines }}
    group by invoice_id

),

active as (

    select distinct
        customer_id,
        billing_period_start
    from {{ ref('int_subscriptions_prorated_to_periods').include(database=False) }}

),

customers as (

    select * from {{ ref('customers').include(database=False) }}

),

currencies as (

    select * from {{ ref('currencies').include(database=False) }}

),

identities as (

    select
        ---------- ids
        coalesce(
            invoices.invoice_id,
            'missing:' || active.customer_id || ':' || strftime(active.billing_period_start, '%Y-%m')
        ) as check_row_id,
        invoices.invoice_id,
        coalesce(invoices.customer_id, active.customer_id) as customer_id,
        ---------- dates
        coalesce(invoices.billing_period_start, active.billing_period_start)
            as billing_period_start,
        ---------- attributes
        {{ status }} as status,
        invoices.currency,
        customers.currency as customer_currency,
        active.customer_id is not null as has_active_subscription,
        ---------- identities (each exactly zero)
        invoices.subtotal_amount - coalesce(lines.line_amount, 0) as subtotal_difference,
        invoices.total_amount - {{ invoice_total(
            'invoices.subtotal_amount', 'invoices.discount_amount',
            'invoices.tax_amount', 'invoices.credits_applied_amount'
        ) }} as total_difference,
        invoices.line_item_count - coalesce(lines.line_count, 0) as line_count_difference,
        abs(invoices.subtotal_amount
            - {{ round_money('invoices.subtotal_amount', 'currencies.minor_units') }})
        + abs(invoices.total_amount
            - {{ round_money('invoices.total_amount', 'currencies.minor_units') }})
        + abs(invoices.tax_amount
            - {{ round_money('invoices.tax_amount', 'currencies.minor_units') }})
        + abs(invoices.discount_amount
            - {{ round_money('invoices.discount_amount', 'currencies.minor_units') }})
            as rounding_remainder,
        ---------- money
        invoices.total_amount,
        invoices.tax_amount,
        invoices.discount_amount,
        invoices.credits_applied_amount
    from invoices
    {% if with_coverage %}full outer join{% else %}left join{% endif %} active
        on
            invoices.customer_id = active.customer_id
            and invoices.billing_period_start = active.billing_period_start
    left join lines
        on invoices.invoice_id = lines.invoice_id
    left join customers
        on coalesce(invoices.customer_id, active.customer_id) = customers.customer_id
    left join currencies
        on invoices.currency = currencies.currency

)

select * from identities
{%- endmacro %}
