"""The seeds: where each one lives, its columns, and the guard on hand-edited accounts.

Rate cards are data written by people: `seeds/rate_cards/` (currencies, meters, plans,
charges, tiers) is committed and never written by code. Accounts (customers,
subscriptions, overrides and their tiers, grants, discounts, usage thresholds) live in
`seeds/accounts/`; the demo generator writes its population there, and refuses to
overwrite a file someone edited. Each seed's columns and types are described once, in
`seeds/_seeds.yml`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
from pathlib import Path

import yaml

from billing.settings import DEFAULT_SEEDS_DIR

SEEDS_PROPERTIES = "_seeds.yml"
RATE_CARDS = ("currencies", "meters", "plans", "plan_charges", "plan_charge_tiers")
ACCOUNTS = (
    "customers",
    "subscriptions",
    "subscription_overrides",
    "subscription_override_tiers",
    "credit_grants",
    "discounts",
    "usage_thresholds",
)
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
