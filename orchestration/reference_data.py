"""The seeds: where each one lives, its columns, and the demo's population of accounts.

Rate cards are data written by people: `seeds/rate_cards/` (currencies, meters, plans,
charges, tiers) is committed and never written by code. Accounts (customers,
subscriptions, overrides, grants, discounts) live in `seeds/accounts/`; the demo generator
writes its population there, and refuses to overwrite a file someone edited. Each seed's
columns and types are described once, in `seeds/_seeds.yml`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import yaml

from orchestration.calendar import add_months
from orchestration.settings import DEFAULT_SEEDS_DIR

SEEDS_PROPERTIES = "_seeds.yml"
RATE_CARDS = ("currencies", "meters", "plans", "plan_charges", "plan_charge_tiers")
ACCOUNTS = ("customers", "subscriptions", "subscription_overrides", "credit_grants", "discounts")
RULES = ("quarantine_reasons",)
FOLDERS = {
    **dict.fromkeys(RATE_CARDS, "rate_cards"),
    **dict.fromkeys(ACCOUNTS, "accounts"),
    **dict.fromkeys(RULES, "rules"),
}
# What the generator last wrote to accounts/, so a hand edit is never overwritten silently.
GENERATED_STAMP = ".generated.json"


class SeedsError(Exception):
    """Seeds the generator cannot use or must not overwrite; one line for the CLI."""


@functools.cache
def seed_columns() -> dict[str, list[str]]:
    """Each seed's columns in CSV order, from `seeds/_seeds.yml` (its `column_types`)."""
    properties = yaml.safe_load((DEFAULT_SEEDS_DIR / SEEDS_PROPERTIES).read_text())
    return {seed["name"]: list(seed["config"]["column_types"]) for seed in properties["seeds"]}


def seed_path(seeds_dir: Path, name: str) -> Path:
    return seeds_dir / FOLDERS[name] / f"{name}.csv"


def csv_text(name: str, rows: list[list[str]]) -> str:
    """A seed file's text: its header, then its rows (an empty seed keeps its header)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(seed_columns()[name])
    writer.writerows(rows)
    return buffer.getvalue()


def read_seed(seeds_dir: Path, name: str) -> list[dict[str, str]]:
    path = seed_path(seeds_dir, name)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))
    except FileNotFoundError as error:
        raise SeedsError(f"no {name} seed at {path}") from error


def prepare_seeds_dir(seeds_dir: Path) -> None:
    """A seeds folder other than the project's gets the seed properties, the rules and,
    unless it already has its own, the committed rate cards (a test or bench scenario)."""
    if seeds_dir.resolve() == DEFAULT_SEEDS_DIR.resolve():
        return
    seeds_dir.mkdir(parents=True, exist_ok=True)
    properties = DEFAULT_SEEDS_DIR / SEEDS_PROPERTIES
    (seeds_dir / SEEDS_PROPERTIES).write_text(properties.read_text())
    for name in (*RATE_CARDS, *RULES):
        target = seed_path(seeds_dir, name)
        if not target.exists() or name in RULES:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(seed_path(DEFAULT_SEEDS_DIR, name).read_text())


def quarantine_reasons(stage: str) -> list[str]:
    """The committed quarantine reasons of one stage (validation, routing), in check order."""
    rows = read_seed(DEFAULT_SEEDS_DIR, "quarantine_reasons")
    ordered = sorted(rows, key=lambda row: int(row["check_order"]))
    return [row["reason"] for row in ordered if row["stage"] == stage]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def edited_accounts(seeds_dir: Path, texts: dict[str, str]) -> list[str]:
    """Account files that differ from what the generator would write now and from what it
    wrote last: somebody edited them."""
    stamp_path = seeds_dir / "accounts" / GENERATED_STAMP
    stamp = json.loads(stamp_path.read_text()) if stamp_path.exists() else {}
    edited = []
    for name, text in texts.items():
        path = seed_path(seeds_dir, name)
        if not path.exists():
            continue
        current = path.read_text(encoding="utf-8")
        if current != text and _digest(current) != stamp.get(name):
            edited.append(path.name)
    return edited


def write_accounts(seeds_dir: Path, rows: dict[str, list[list[str]]], replace: bool) -> None:
    """Write the demo's accounts; refused when that would overwrite someone's edits."""
    texts = {name: csv_text(name, rows[name]) for name in ACCOUNTS}
    edited = edited_accounts(seeds_dir, texts)
    if edited and not replace:
        raise SeedsError(
            f"{seeds_dir / 'accounts'} has edits the generator did not make "
            f"({', '.join(edited)}); nothing was written. Keep them and skip generating, or "
            "pass --replace-accounts to replace the accounts with the demo's"
        )
    (seeds_dir / "accounts").mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        seed_path(seeds_dir, name).write_text(text, encoding="utf-8")
    stamp = {name: _digest(text) for name, text in texts.items()}
    (seeds_dir / "accounts" / GENERATED_STAMP).write_text(json.dumps(stamp, indent=2) + "\n")


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
    """The demo's account seeds: customers and their subscriptions; no overrides, grants or
    discounts (the tests write their own)."""
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
            ]
            for c in customers
        ],
        "subscriptions": subscriptions,
        "subscription_overrides": [],
        "credit_grants": [],
        "discounts": [],
    }
