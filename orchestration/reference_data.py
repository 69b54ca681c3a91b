"""The demo's reference data (seeds): currencies, customers, meters, plans and rate cards.

These are the rate cards a real usage-priced SaaS would publish: a free allowance with
graduated API pricing, volume-priced storage, package-priced images, staircase-priced seats,
per-model token prices and an enterprise plan with a minimum commitment, in USD, EUR and JPY.
"""

from __future__ import annotations

import csv
import random
from dataclasses import dataclass
from datetime import date
from pathlib import Path

SEED_COLUMNS: dict[str, list[str]] = {
    "currencies": ["currency", "minor_units"],
    "customers": [
        "customer_id",
        "customer_name",
        "currency",
        "tax_rate",
        "invoice_grace_hours",
        "timezone",
    ],
    "meters": [
        "meter_id",
        "event_type",
        "aggregation",
        "value_property",
        "group_by_property",
        "unit_name",
        "description",
    ],
    "plans": ["plan_id", "plan_name", "currency", "base_fee", "minimum_commitment"],
    "plan_charges": [
        "charge_id",
        "plan_id",
        "meter_id",
        "dimension_value",
        "charge_model",
        "unit_price",
        "package_size",
        "free_units",
        "quantity_divisor",
        "quantity_rounding",
        "quantity_precision",
        "min_amount",
        "max_amount",
        "display_name",
    ],
    "plan_charge_tiers": ["charge_id", "tier", "up_to", "unit_price", "flat_fee"],
    "subscriptions": ["subscription_id", "customer_id", "plan_id", "starts_on", "ends_on"],
    "subscription_overrides": ["subscription_id", "charge_id", "price_multiplier"],
    "credit_grants": [
        "grant_id",
        "customer_id",
        "amount",
        "currency",
        "granted_on",
        "expires_on",
        "priority",
    ],
    "discounts": [
        "discount_id",
        "customer_id",
        "discount_type",
        "value",
        "starts_on",
        "ends_on",
    ],
}

CURRENCIES = [("USD", 2), ("EUR", 2), ("JPY", 0), ("CREDITS", 0)]

# meter_id, event_type, aggregation, value_property, group_by_property, unit_name, description
METERS = [
    ("api_calls", "api_call", "count", "", "", "call", "API requests served"),
    ("input_tokens", "llm_tokens", "sum", "tokens_input", "model", "token", "Prompt tokens"),
    ("output_tokens", "llm_tokens", "sum", "tokens_output", "model", "token", "Output tokens"),
    ("storage_gb", "storage_snapshot", "max", "gb", "", "GB", "Peak storage held"),
    ("active_users", "user_activity", "unique_count", "user_id", "", "user", "Distinct users"),
    ("images", "image_generation", "count", "", "", "image", "Images generated"),
]

# plan_id, plan_name, currency, base_fee, minimum_commitment
PLANS = [
    ("starter_usd", "Starter", "USD", "49.00", ""),
    ("growth_usd", "Growth", "USD", "499.00", ""),
    ("enterprise_usd", "Enterprise", "USD", "2000.00", "1500.00"),
    ("growth_eur", "Growth (EUR)", "EUR", "459.00", ""),
    ("starter_jpy", "Starter (JPY)", "JPY", "7500", ""),
]


@dataclass(frozen=True)
class Charge:
    """One priced line of a rate card; blank strings are blank seed cells."""

    charge_id: str
    plan_id: str
    meter_id: str
    charge_model: str
    display_name: str
    dimension_value: str = ""
    unit_price: str = ""
    package_size: str = ""
    free_units: str = ""
    quantity_divisor: str = ""
    quantity_rounding: str = "none"
    quantity_precision: str = ""
    min_amount: str = ""
    max_amount: str = ""
    tiers: tuple[tuple[str, str, str], ...] = ()  # (up_to, unit_price, flat_fee)


def _per_thousand(charge_id: str, plan_id: str, meter: str, model: str, price: str) -> Charge:
    """Token prices are quoted per 1,000 tokens, billed in whole thousands rounded up."""
    label = model or "other models"
    return Charge(
        charge_id,
        plan_id,
        meter,
        "standard",
        f"{meter.replace('_', ' ').capitalize()} ({label}), per 1K",
        dimension_value=model,
        unit_price=price,
        quantity_divisor="1000",
        quantity_rounding="up",
        quantity_precision="0",
    )


STORAGE_TIERS = (("100", "0.25", "0"), ("1000", "0.20", "0"), ("", "0.15", "0"))
SEAT_STEPS = (("5", "0", "0"), ("25", "0", "250"), ("100", "0", "900"), ("", "0", "2500"))

CHARGES = [
    Charge(
        "starter_api_calls",
        "starter_usd",
        "api_calls",
        "graduated",
        "API calls",
        tiers=(("10000", "0", "0"), ("1000000", "0.0005", "0"), ("", "0.0003", "0")),
    ),
    Charge(
        "starter_storage",
        "starter_usd",
        "storage_gb",
        "volume",
        "Storage (peak GB)",
        quantity_divisor="1",
        quantity_rounding="up",
        quantity_precision="0",
        tiers=STORAGE_TIERS,
    ),
    Charge(
        "starter_images",
        "starter_usd",
        "images",
        "package",
        "Images, per 100",
        unit_price="2.00",
        package_size="100",
        free_units="50",
    ),
    Charge(
        "growth_api_calls",
        "growth_usd",
        "api_calls",
        "graduated",
        "API calls",
        tiers=(("100000", "0", "0"), ("5000000", "0.0004", "0"), ("", "0.00025", "0")),
    ),
    _per_thousand("growth_input_gpt4", "growth_usd", "input_tokens", "gpt-4", "0.03"),
    _per_thousand("growth_input_other", "growth_usd", "input_tokens", "", "0.0015"),
    _per_thousand("growth_output_gpt4", "growth_usd", "output_tokens", "gpt-4", "0.06"),
    _per_thousand("growth_output_other", "growth_usd", "output_tokens", "", "0.002"),
    Charge("growth_seats", "growth_usd", "active_users", "staircase", "Seats", tiers=SEAT_STEPS),
    Charge(
        "enterprise_api_calls",
        "enterprise_usd",
        "api_calls",
        "standard",
        "API calls",
        unit_price="0.002",
    ),
    _per_thousand("enterprise_input", "enterprise_usd", "input_tokens", "", "0.001"),
    _per_thousand("enterprise_output", "enterprise_usd", "output_tokens", "", "0.0015"),
    Charge(
        "enterprise_storage",
        "enterprise_usd",
        "storage_gb",
        "volume",
        "Storage (peak GB)",
        quantity_divisor="1",
        quantity_rounding="up",
        quantity_precision="0",
        tiers=STORAGE_TIERS,
    ),
    Charge(
        "enterprise_seats",
        "enterprise_usd",
        "active_users",
        "staircase",
        "Seats",
        tiers=SEAT_STEPS,
    ),
    Charge(
        "growth_eur_api_calls",
        "growth_eur",
        "api_calls",
        "graduated",
        "API calls",
        tiers=(("100000", "0", "0"), ("", "0.00035", "0")),
    ),
    _per_thousand("growth_eur_input", "growth_eur", "input_tokens", "", "0.0014"),
    _per_thousand("growth_eur_output", "growth_eur", "output_tokens", "", "0.0018"),
    Charge(
        "starter_jpy_api_calls",
        "starter_jpy",
        "api_calls",
        "graduated",
        "API calls",
        tiers=(("10000", "0", "0"), ("", "0.07", "0")),
    ),
    Charge(
        "starter_jpy_images",
        "starter_jpy",
        "images",
        "package",
        "Images, per 100",
        unit_price="300",
        package_size="100",
        free_units="50",
    ),
]

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


def make_customers(count: int, rng: random.Random) -> list[Customer]:
    """Customers with a heavy-tailed usage weight: a few large accounts, a long tail."""
    tax_by_currency = {"USD": ["0", "0.0725", "0.0875"], "EUR": ["0.19", "0.2"], "JPY": ["0.1"]}
    zones = {"USD": "America/New_York", "EUR": "Europe/Berlin", "JPY": "Asia/Tokyo"}
    customers = []
    for index in range(1, count + 1):
        plan = _plan_for(index)
        currency = next(p[2] for p in PLANS if p[0] == plan)
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


def add_months(day: date, months: int) -> date:
    month_index = day.year * 12 + day.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, 1)


def seed_rows(customers: list[Customer], first_month: date) -> dict[str, list[list[str]]]:
    """Every seed file's rows, in the column order of architecture §4."""
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
        "currencies": [[code, str(units)] for code, units in CURRENCIES],
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
        "meters": [list(meter) for meter in METERS],
        "plans": [list(plan) for plan in PLANS],
        "plan_charges": [
            [
                c.charge_id,
                c.plan_id,
                c.meter_id,
                c.dimension_value,
                c.charge_model,
                c.unit_price,
                c.package_size,
                c.free_units,
                c.quantity_divisor,
                c.quantity_rounding,
                c.quantity_precision,
                c.min_amount,
                c.max_amount,
                c.display_name,
            ]
            for c in CHARGES
        ],
        "plan_charge_tiers": [
            [c.charge_id, str(tier), up_to, price, flat]
            for c in CHARGES
            for tier, (up_to, price, flat) in enumerate(c.tiers, start=1)
        ],
        "subscriptions": subscriptions,
        "subscription_overrides": [],
        "credit_grants": [],
        "discounts": [],
    }


def write_seeds(seeds_dir: Path, rows: dict[str, list[list[str]]]) -> None:
    """Write each seed as CSV with its header; empty seeds keep their header."""
    seeds_dir.mkdir(parents=True, exist_ok=True)
    for name, columns in SEED_COLUMNS.items():
        with (seeds_dir / f"{name}.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(columns)
            writer.writerows(rows[name])
