{#
    The invoice marts' identities, one row per invoice and per active customer period without
    one (macro invoice_identities). Read by tests/marts/assert_invoices_add_up.sql and by the
    Great Expectations `invoices` suite, which gates finalization.
#}
{{ invoice_identities(
    ref('fct_invoices').include(database=False),
    ref('fct_invoice_line_items').include(database=False),
    'invoices.status',
    with_coverage=true
) }}
