"""Credit grants applied to invoices (architecture §6.4 step 6), as one pure, exact function.

Applying credit is sequential: what one invoice spends, the next cannot, and grants expire
in between. That is a loop, not a join, so it lives here and runs as a dbt Python model
(models/intermediate/billing/int_credit_applications.py); everything is Decimal, never float.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

ZERO = Decimal("0")


@dataclass(frozen=True)
class Grant:
    grant_id: str
    customer_id: str
    currency: str
    amount: Decimal
    granted_on: date
    expires_on: date | None
    priority: int


@dataclass(frozen=True)
class OpenInvoice:
    invoice_id: str
    customer_id: str
    currency: str
    billing_period_start: date
    billing_period_end: date
    amount_due: Decimal  # subtotal - discount + tax, before credits


@dataclass(frozen=True)
class Application:
    invoice_id: str
    grant_id: str
    applied_amount: Decimal
    balance_after: Decimal


# Credit notes are spent before every grant (DECISIONLOG D35): the customer is owed that
# money outright, while a grant may expire. No seed priority is this low.
CREDIT_NOTE_PRIORITY = -(10**9)
CREDIT_NOTE_PREFIX = "cn_"


def credit_note_grant(
    invoice_id: str, customer_id: str, currency: str, amount: Decimal, period_end: date
) -> Grant:
    """The customer balance a credit note creates, as a grant that never expires.

    It is in force from the end of the invoice's period, so it pays the customer's next
    invoices and never the invoice that issued it.
    """
    return Grant(
        CREDIT_NOTE_PREFIX + invoice_id,
        customer_id,
        currency,
        amount,
        period_end,
        None,
        CREDIT_NOTE_PRIORITY,
    )


def spending_order(grant: Grant) -> tuple:
    """Lowest priority first, then the earliest to expire (never last), then the oldest."""
    return (grant.priority, grant.expires_on or date.max, grant.granted_on, grant.grant_id)


def can_pay(grant: Grant, invoice: OpenInvoice) -> bool:
    """A grant pays invoices in its currency for periods it was in force during."""
    return (
        grant.customer_id == invoice.customer_id
        and grant.currency == invoice.currency
        and grant.granted_on < invoice.billing_period_end
        and (grant.expires_on is None or grant.expires_on > invoice.billing_period_start)
    )


def allocate_credits(
    grants: list[Grant], spent: dict[str, Decimal], invoices: list[OpenInvoice]
) -> list[Application]:
    """Spend grants on open invoices in period order, never more than is due.

    `spent` is what finalized invoices already took from each grant; the unused balance
    carries forward to later invoices until the grant expires.
    """
    balances = {g.grant_id: g.amount - spent.get(g.grant_id, ZERO) for g in grants}
    ordered_grants = sorted(grants, key=spending_order)
    applications: list[Application] = []
    for invoice in sorted(invoices, key=lambda i: (i.billing_period_start, i.invoice_id)):
        left_to_pay = max(invoice.amount_due, ZERO)
        for grant in ordered_grants:
            if left_to_pay == ZERO:
                break
            if balances[grant.grant_id] <= ZERO or not can_pay(grant, invoice):
                continue
            applied = min(balances[grant.grant_id], left_to_pay)
            balances[grant.grant_id] -= applied
            left_to_pay -= applied
            applications.append(
                Application(invoice.invoice_id, grant.grant_id, applied, balances[grant.grant_id])
            )
    return applications
