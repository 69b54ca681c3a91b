{#
    The open invoices as they stand at `as_of`: sums of their rounded lines, discounts
    (never more than the subtotal), tax rounded once per invoice on what remains
    (architecture §6.4), and when each becomes final (period end + the customer's grace
    hours). Credits come next (int_invoices_credited). Finalized invoices are not here: they live in the
    ledger and never change.
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

discounts as (

    select * from {{ ref('discounts') }}

),

charges_rated as (

    select * from {{ ref('int_charges_rated') }}

),

holds as (

    {# A customer whose usage or a line goes beyond the supported ranges (README) is not
       rated on a guess: all their open invoices are held (never finalized) until the
       input is fixed, and every other customer is billed as usual (DECISIONLOG D33). #}
    select
        customer_id,
        'beyond the supported range: charge ' || min(charge_id) || ' in '
        || strftime(min(billing_period_start), '%Y-%m') as hold_reason
    from charges_rated
    where is_out_of_range
    group by customer_id

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

discounts_per_invoice as (

    {# A discount applies to the invoices of periods that start inside its date range;
       a percentage is a fraction of the subtotal (0.1 = 10 %), each rounded on its own. #}
    select
        lines_per_invoice.invoice_id,
        sum(
            case discounts.discount_type
                when 'percentage'
                    then {{ round_money(
                        'lines_per_invoice.subtotal_amount * discounts.value',
                        'currencies.minor_units'
                    ) }}
                else {{ round_money('discounts.value', 'currencies.minor_units') }}
            end
        ) as requested_discount_amount
    from lines_per_invoice
    inner join discounts
        on
            lines_per_invoice.customer_id = discounts.customer_id
            and {{ falls_within(
                'lines_per_invoice.billing_period_start', 'discounts.starts_on', 'discounts.ends_on'
            ) }}
    inner join currencies
        on lines_per_invoice.currency = currencies.currency
    group by lines_per_invoice.invoice_id

),

invoices_discounted as (

    select
        lines_per_invoice.*,
        {# Never below a zero subtotal. #}
        cast(
            least(
                coalesce(discounts_per_invoice.requested_discount_amount, 0),
                greatest(lines_per_invoice.subtotal_amount, 0)
            ) as decimal(38, 4)
        ) as discount_amount
    from lines_per_invoice
    left join discounts_per_invoice
        on lines_per_invoice.invoice_id = discounts_per_invoice.invoice_id

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
        lines_per_invoice.discount_amount,
        {# Tax on what is owed before credits, never on a negative amount. #}
        {{ round_money(
            'greatest(lines_per_invoice.subtotal_amount - lines_per_invoice.discount_amount, 0)'
            ~ ' * customers.tax_rate',
            'currencies.minor_units'
        ) }} as tax_amount,
        customers.tax_rate,
        lines_per_invoice.line_item_count,
        holds.hold_reason,
        ---------- dates
        lines_per_invoice.billing_period_start,
        lines_per_invoice.billing_period_end,
        lines_per_invoice.billing_period_end + to_hours(
            coalesce(
                customers.invoice_grace_hours, {{ var('default_invoice_grace_hours') }}
            )
        ) as finalizes_at
    from invoices_discounted as lines_per_invoice
    inner join customers
        on lines_per_invoice.customer_id = customers.customer_id
    inner join currencies
        on lines_per_invoice.currency = currencies.currency
    left join holds
        on lines_per_invoice.customer_id = holds.customer_id

)

select * from invoices_calculated
