"""The demo's population of accounts: customers on a fixed plan mix, their subscriptions.

Written by `billing generate` to `seeds/accounts/` (billing.seeds.write_accounts refuses to
overwrite a hand edit); the rate cards it reads are the committed ones.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from billing.rules.calendar import add_months
from billing.seeds import SeedsError, read_seed, seed_path

# Which event types each plan's customers send, with relative weights.
PLAN_EVENT_MIX = {
    "starter_usd": {"api_call": 80, "image_generation": 15, "user_activity": 5},
    "growth_usd": {"api_call": 50, "llm_tokens": 40, "user_activity": 10},
    "enterprise_usd": {"api_call": 55, "llm_tokens": 40, "user_activity": 5},
    "growth_eur": {"api_call": 55, "llm_tokens": 45},
    "starter_jpy": {"api_call": 85, "image_generation": 15},
}
# Plans whose customers report storage snapshots (four a day).
PLANS_WITH_STORAGE = {"starter_usd", "enterprise_usd"}

COMPANY_WORDS = [
    "Acme", "Globex", "Initech", "Umbrella", "Hooli", "Stark", "Wayne", "Tyrell", "Cyberdyne",
    "Soylent", "Wonka", "Vandelay", "Pied Piper", "Aperture", "Black Mesa", "Oscorp", "Massive",
    "Nakatomi", "Gringotts", "Monarch", "Dunder", "Prestige", "Sirius", "Virtucon", "Zorg",
]  # fmt: skip
COMPANY_SUFFIXES = ["Labs", "Systems", "AI", "Analytics", "Cloud", "Robotics", "Data"]


@dataclass(frozen=True)
class Customer:
    customer_id: str
    customer_name: str
    currency: str
    tax_rate: str
    invoice_grace_hours: str
    timezone: str
    net_terms_days: str
    plan_id: str
    weight: float


def _plan_for(index: int) -> str:
    """A fixed plan mix: mostly USD self-serve, a few enterprise, EUR and JPY accounts."""
    if index % 10 == 9:
        return "starter_jpy" if index % 20 == 19 else "growth_eur"
    if index % 8 == 0:
        return "enterprise_usd"
    return "growth_usd" if index % 3 == 0 else "starter_usd"


def plan_currencies(seeds_dir: Path) -> dict[str, str]:
    """Each demo plan's currency, from the rate cards; a demo plan missing there is an error."""
    currencies = {row["plan_id"]: row["currency"] for row in read_seed(seeds_dir, "plans")}
    missing = sorted(set(PLAN_EVENT_MIX) - set(currencies))
    if missing:
        raise SeedsError(
            f"the demo population subscribes customers to plans the rate cards lack "
            f"({', '.join(missing)}; {seed_path(seeds_dir, 'plans')})"
        )
    return currencies


def make_customers(count: int, rng: random.Random, currencies: dict[str, str]) -> list[Customer]:
    """Customers with a heavy-tailed usage weight: a few large accounts, a long tail."""
    tax_by_currency = {"USD": ["0", "0.0725", "0.0875"], "EUR": ["0.19", "0.2"], "JPY": ["0.1"]}
    zones = {"USD": "America/New_York", "EUR": "Europe/Berlin", "JPY": "Asia/Tokyo"}
    customers = []
    for index in range(1, count + 1):
        plan = _plan_for(index)
        currency = currencies[plan]
        word = COMPANY_WORDS[(index - 1) % len(COMPANY_WORDS)]
        suffix = COMPANY_SUFFIXES[(index - 1) // len(COMPANY_WORDS) % len(COMPANY_SUFFIXES)]
        customers.append(
            Customer(
                customer_id=f"cust_{index:04d}",
                customer_name=f"{word} {suffix}",
                currency=currency,
                tax_rate=rng.choice(tax_by_currency[currency]),
                invoice_grace_hours="48" if index % 7 == 0 else "",
                timezone=zones[currency],
                # Enterprise contracts pay at net 45, a few self-serve accounts at net 15,
                # the rest at the project's default (blank = net 30).
                net_terms_days="45"
                if plan == "enterprise_usd"
                else ("15" if index % 5 == 0 else ""),
                plan_id=plan,
                weight=rng.paretovariate(1.3) * (4 if plan == "enterprise_usd" else 1),
            )
        )
    return customers


def subscription_window(customer: Customer, first_month: date, index: int) -> tuple[date, date]:
    """Most subscriptions predate the data; some start mid-month and one in nine churns.

    The end date is exclusive; date.max stands for an open subscription.
    """
    starts_on = date(first_month.year - 1, 1, 1)
    if index % 6 == 5:
        starts_on = first_month.replace(day=10 + index % 10)
    ends_on = date.max
    if index % 9 == 4:
        month2 = add_months(first_month, 1)
        ends_on = month2.replace(day=15)
    return starts_on, ends_on


def account_rows(customers: list[Customer], first_month: date) -> dict[str, list[list[str]]]:
    """The demo's account seeds: customers and their subscriptions; no overrides, grants,
    discounts or thresholds (the tests write their own)."""
    subscriptions = []
    for index, customer in enumerate(customers, start=1):
        starts_on, ends_on = subscription_window(customer, first_month, index)
        subscriptions.append(
            [
                f"sub_{customer.customer_id.removeprefix('cust_')}",
                customer.customer_id,
                customer.plan_id,
                starts_on.isoformat(),
                "" if ends_on == date.max else ends_on.isoformat(),
                "",  # trial_days: the demo's subscriptions have none
                "",  # trial_usage
            ]
        )
    return {
        "customers": [
            [
                c.customer_id,
                c.customer_name,
                c.currency,
                c.tax_rate,
                c.invoice_grace_hours,
                c.timezone,
                c.net_terms_days,
            ]
            for c in customers
        ],
        "subscriptions": subscriptions,
        "subscription_overrides": [],
        "subscription_override_tiers": [],
        "credit_grants": [],
        "discounts": [],
        "usage_thresholds": [],
    }
