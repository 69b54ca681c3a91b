"""Credit allocation rules (architecture §6.4 step 6), on the pure function, with exact decimals."""

from __future__ import annotations

from datetime import date
from decimal import Decimal as D

from billing.rules.credits import Grant, OpenInvoice, allocate_credits


def grant(
    grant_id, amount, priority=1, granted_on=date(2026, 1, 1), expires_on=None, currency="USD"
):
    return Grant(grant_id, "c1", currency, D(amount), granted_on, expires_on, priority)


def invoice(month: int, due: str, currency="USD") -> OpenInvoice:
    return OpenInvoice(
        f"inv-{month}", "c1", currency, date(2026, month, 1), date(2026, month + 1, 1), D(due)
    )


def spent(applications) -> list[tuple]:
    return [(a.invoice_id, a.grant_id, a.applied_amount, a.balance_after) for a in applications]


def test_lowest_priority_then_earliest_expiry_then_earliest_grant():
    grants = [
        grant("late-expiry", "10", priority=1, expires_on=date(2027, 1, 1)),
        grant("never-expires", "10", priority=1),
        grant("early-expiry", "10", priority=1, expires_on=date(2026, 12, 1)),
        grant("older", "10", priority=2, granted_on=date(2025, 1, 1)),
        grant("newer", "10", priority=2, granted_on=date(2025, 6, 1)),
        grant("low", "10", priority=0),
    ]
    # 55.00 due: low 10, early-expiry 10, late-expiry 10, never-expires 10, older 10, newer 5
    assert spent(allocate_credits(grants, {}, [invoice(9, "55.00")])) == [
        ("inv-9", "low", D("10"), D("0")),
        ("inv-9", "early-expiry", D("10"), D("0")),
        ("inv-9", "late-expiry", D("10"), D("0")),
        ("inv-9", "never-expires", D("10"), D("0")),
        ("inv-9", "older", D("10"), D("0")),
        ("inv-9", "newer", D("5.00"), D("5.00")),
    ]


def test_never_more_than_due_and_the_rest_carries_forward():
    # 100 granted; September due 30.25 -> 69.75 left; October due 80 -> 69.75 applied
    applications = allocate_credits(
        [grant("g", "100")], {}, [invoice(10, "80"), invoice(9, "30.25")]
    )
    assert spent(applications) == [
        ("inv-9", "g", D("30.25"), D("69.75")),
        ("inv-10", "g", D("69.75"), D("0.00")),
    ]


def test_expired_foreign_currency_and_already_spent_grants_do_not_pay():
    grants = [
        grant("expired", "50", expires_on=date(2026, 9, 1)),  # gone before September
        grant("future", "50", granted_on=date(2026, 10, 1)),  # granted after September
        grant("euros", "50", currency="EUR"),
        grant("spent", "50"),
        grant("usable", "50"),
    ]
    applications = allocate_credits(grants, {"spent": D("50")}, [invoice(9, "20")])
    assert spent(applications) == [("inv-9", "usable", D("20"), D("30"))]


def test_nothing_is_applied_to_an_invoice_with_nothing_due():
    assert allocate_credits([grant("g", "10")], {}, [invoice(9, "0"), invoice(10, "-5")]) == []
