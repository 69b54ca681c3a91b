{#
    The identities of the open invoices a monthly run is about to finalize (and the drafts
    beside them), before the invoice marts and the ledger (macro invoice_identities).
    Periods already finalized are not candidates, so there is no coverage check here (the
    invoice marts' check has it). Read by the Great Expectations `invoice_candidates` suite.
#}
{{ invoice_identities(
    ref('int_invoices_credited').include(database=False),
    ref('int_invoice_lines_assembled').include(database=False),
    "'draft'",
    with_coverage=false
) }}
