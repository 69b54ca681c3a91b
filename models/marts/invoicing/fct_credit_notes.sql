{#
    Credit notes and the customer balance they left (DECISIONLOG D35): each credit_note
    line of an invoice, with what the customer's later invoices spent from it, finalized
    or draft (fct_credit_balances carries a note's spending like any grant's).
#}
with

line_items as (

    select * from {{ ref('fct_invoice_line_items') }}

),

credit_balances as (

    select * from {{ ref('fct_credit_balances') }}

),

applied_per_note as (

    select
        grant_id,
        sum(applied_amount) as applied_amount
    from credit_balances
    group by grant_id

),

credit_notes as (

    select
        ---------- ids
        'cn_' || line_items.invoice_id as credit_note_id,
        line_items.invoice_id,
        line_items.customer_id,
        ---------- attributes
        line_items.currency,
        line_items.billing_period_start,
        line_items.is_finalized,
        ---------- money
        cast(line_items.amount as decimal(38, 4)) as credit_note_amount,
        cast(coalesce(applied_per_note.applied_amount, 0) as decimal(38, 4)) as applied_amount,
        cast(line_items.amount - coalesce(applied_per_note.applied_amount, 0) as decimal(38, 4))
            as remaining_amount
    from line_items
    left join applied_per_note
        on 'cn_' || line_items.invoice_id = applied_per_note.grant_id
    where line_items.line_type = 'credit_note'

)

select * from credit_notes
