{#
    The ledger as it stands once this build's finalization commits: what the previous
    build left (source `ledger`) and the rows this build finalizes (`int_*_finalizing`).
    Marts read the ledger through here, so they show the state `billing build` publishes
    after its one ledger transaction (billing/warehouse/ledger.py); a build that fails before
    finalizing publishes nothing.
#}
{% macro ledger_after_this_build(ledger_table, finalizing_model) -%}
    {{ return(adapter.dispatch('ledger_after_this_build', 'billing')(ledger_table, finalizing_model)) }}
{%- endmacro %}

{% macro default__ledger_after_this_build(ledger_table, finalizing_model) -%}
    {{ ledger_in_force(ledger_table) }}
    union all by name
    {#- A finalizing row whose invoice is already in the ledger was finalized by an earlier
        run of this build's models (a partial build after it reads them again). #}
    select * from {{ ref(finalizing_model) }}
    where invoice_id not in (
        select ledger_invoices.invoice_id
        from {{ source('ledger', 'fct_invoices_finalized') }} as ledger_invoices
    )
{%- endmacro %}


{#
    The rows of a ledger table that belong to invoices in force: finalized and not voided
    (DECISIONLOG D48). A voided invoice's rows stay in the ledger, unchanged; what it billed
    and what credit it spent no longer count, so its period is reissued.
#}
{% macro ledger_in_force(ledger_table) -%}
    select * from {{ source('ledger', ledger_table) }}
    where invoice_id not in (
        select voids.invoice_id from {{ source('ledger', 'fct_invoice_voids') }} as voids
    )
{%- endmacro %}
