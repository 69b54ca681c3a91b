"""Sample data: a realistic month or more of usage events, with the mess producers really send.

The generator decides the fate of every line it writes (accepted, duplicate, or quarantined
for a given reason) and records those counts, per file and in total, so tests can compare the
pipeline's routing against what was injected, exactly.
"""

from __future__ import annotations

import gzip
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
from tqdm import tqdm

from billing.rules.calendar import add_months
from billing.sample.accounts import (
    PLAN_EVENT_MIX,
    PLANS_WITH_STORAGE,
    Customer,
    account_rows,
    make_customers,
    plan_currencies,
    subscription_window,
)
from billing.seeds import SeedsError, prepare_seeds_dir, quarantine_reasons, write_accounts

FILE_PREFIX = "events-"
CONTROL_PREFIX = "control-totals-"
SPIKE_EVENT_TYPE = "api_call"
SPIKE_FACTOR = 10
# A spike needs this many earlier active days, so the anomaly baseline has history to judge by.
SPIKE_MIN_HISTORY_DAYS = 14
# ... and a usual day of at least this many calls, so the spike day clears the anomaly
# detector's minimum volume (dbt var anomaly_min_events, 20) with room to spare.
SPIKE_MIN_USUAL_EVENTS = 5
ENDPOINTS = ["/v1/search", "/v1/embeddings", "/v2/completions", "/v2/chat", "/v1/files"]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1"]
MODELS = ["gpt-4", "gpt-4o-mini", "claude-3-haiku", "llama-3-70b"]
MODEL_WEIGHTS = [20, 45, 25, 10]
OFFSETS = ["+02:00", "-05:00", "+05:30", "+09:00", "-08:00", "+00:00"]

# Share of the requested events spent on each kind of mess (a minimum of one each).
DUPLICATE_RATE = 0.01
CONFLICT_RATE = 0.0005
MESS_RATE = 0.0003
OFFSET_RATE = 0.01
REVERSAL_RATE = 0.0005
# The validation reasons of seeds/rules/quarantine_reasons.csv this generator knows how to
# fabricate (messy_event), injected in the seed's check order. Not fabricated:
# invalid_encoding, duplicate_key, invalid_event_id and value_out_of_range (the ingest and
# staging tests cover them with hand-written lines).
FABRICATED_REASONS = {
    "malformed_json",
    "missing_event_id",
    "missing_customer_id",
    "missing_event_type",
    "missing_timestamp",
    "invalid_timestamp",
    "future_timestamp",
    "unknown_customer",
    "unknown_event_type",
    "invalid_properties",
    "missing_value",
    "non_numeric_value",
}


def injected_reasons() -> list[str]:
    """The reasons to inject, in check order; one the seed does not list is an error."""
    listed = quarantine_reasons("validation")
    unknown = sorted(FABRICATED_REASONS - set(listed))
    if unknown:
        raise SeedsError(
            f"the generator fabricates reasons seeds/rules/quarantine_reasons.csv lacks: "
            f"{', '.join(unknown)}"
        )
    return [reason for reason in listed if reason in FABRICATED_REASONS]


@dataclass
class LandingFile:
    """The lines of one landing file, each with a sort key and its expected routing."""

    name: str
    fmt: str
    entries: list[tuple[float, str, str]] = field(default_factory=list)  # key, line, outcome

    def add(self, key: float, line: str, outcome: str) -> None:
        self.entries.append((key, line, outcome))


@dataclass(frozen=True)
class GenerateOptions:
    events: int = 1_000_000
    customers: int = 50
    months: int = 2
    first_month: date = date(2026, 9, 1)
    seed: int = 42
    spikes: int = 0
    control_totals: bool = True
    replace_accounts: bool = False
    # The last N days land later (`make bench`'s daily run): their files, and the control
    # rows restating the keys they touch, go to a folder of their own.
    held_out_days: int = 0


@dataclass(frozen=True)
class Spike:
    """A day on which one customer suddenly sends SPIKE_FACTOR times its usual api calls."""

    customer_id: str
    day: date
    usual_events: int
    extra_events: int


def format_utc(day: date, second: int) -> str:
    """RFC 3339 UTC text without datetime objects: the hot loop writes a million of these."""
    hours, rest = divmod(second, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{day.isoformat()}T{hours:02d}:{minutes:02d}:{seconds:02d}Z"


def with_offset(day: date, second: int, offset: str) -> str:
    """The same instant written in another UTC offset, as producers abroad send it."""
    sign = 1 if offset[0] == "+" else -1
    delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6])) * sign
    local = datetime(day.year, day.month, day.day) + timedelta(seconds=second) + delta
    return local.strftime("%Y-%m-%dT%H:%M:%S") + offset


def event_line(event: dict) -> str:
    return json.dumps(event)


class EventFactory:
    """Makes the properties of each event type, with per-customer shapes that stay stable."""

    def __init__(self, rng: random.Random, customers: list[Customer]):
        self.rng = rng
        self.users = {c.customer_id: max(3, int(c.weight * 20)) for c in customers}
        self.storage_base = {c.customer_id: round(5 + c.weight * 40, 3) for c in customers}
        self.sequence = 0

    def next_id(self) -> str:
        self.sequence += 1
        return f"evt_{self.sequence:09d}{self.rng.getrandbits(24):06x}"

    def properties(self, event_type: str, customer_id: str, day_index: int) -> dict:
        rng = self.rng
        if event_type == "api_call":
            return {
                "endpoint": rng.choice(ENDPOINTS),
                "region": rng.choice(REGIONS),
                "response_time_ms": rng.randint(20, 900),
            }
        if event_type == "llm_tokens":
            return {
                "model": rng.choices(MODELS, MODEL_WEIGHTS)[0],
                "tokens_input": rng.randint(50, 4000),
                "tokens_output": rng.randint(10, 1500),
            }
        if event_type == "user_activity":
            return {"user_id": f"user_{rng.randrange(self.users[customer_id]):05d}"}
        if event_type == "image_generation":
            return {"resolution": rng.choice(["512x512", "1024x1024"])}
        growth = 1 + day_index * 0.01
        gb = self.storage_base[customer_id] * growth * (0.9 + 0.2 * rng.random())
        return {"gb": round(gb, 3)}


def customer_days(customer: Customer, index: int, days: list[date], first: date) -> list[date]:
    starts_on, ends_on = subscription_window(customer, first, index)
    return [day for day in days if starts_on <= day < ends_on]


def clean_events(
    options: GenerateOptions,
    customers: list[Customer],
    days: list[date],
    factory: EventFactory,
    budget: int,
) -> list[tuple[date, float, dict]]:
    """Valid events, spread over customers by weight and over their active days."""
    rng = factory.rng
    active = {
        c.customer_id: customer_days(c, index, days, options.first_month)
        for index, c in enumerate(customers, start=1)
    }
    storage_events = sum(
        4 * len(active[c.customer_id]) for c in customers if c.plan_id in PLANS_WITH_STORAGE
    )
    usage_budget = max(budget - storage_events, 0)
    total_weight = sum(c.weight * len(active[c.customer_id]) for c in customers) or 1.0
    made: list[tuple[date, float, dict]] = []
    day_index = {day: i for i, day in enumerate(days)}
    for customer in tqdm(customers, desc="generate", unit="customer"):
        mix = PLAN_EVENT_MIX[customer.plan_id]
        types, weights = list(mix), list(mix.values())
        per_day = usage_budget * customer.weight / total_weight
        for day in active[customer.customer_id]:
            count = int(per_day * (0.8 + 0.4 * rng.random()))
            snapshots = [6 * 3600 * k + rng.randrange(3600) for k in range(4)]
            if customer.plan_id not in PLANS_WITH_STORAGE:
                snapshots = []
            chosen = rng.choices(types, weights, k=count) + ["storage_snapshot"] * len(snapshots)
            for position, event_type in enumerate(chosen):
                second = snapshots[position - count] if position >= count else rng.randrange(86400)
                event = {
                    "event_id": factory.next_id(),
                    "customer_id": customer.customer_id,
                    "event_type": event_type,
                    "timestamp": format_utc(day, second),
                    "properties": factory.properties(
                        event_type, customer.customer_id, day_index[day]
                    ),
                }
                if rng.random() < OFFSET_RATE:
                    event["timestamp"] = with_offset(day, second, rng.choice(OFFSETS))
                made.append((day, second + rng.random(), event))
    return made


def messy_event(reason: str, base: dict, rng: random.Random, first_month: date) -> str:
    """One line that staging must quarantine for exactly `reason`."""
    event = json.loads(json.dumps(base))
    if reason == "malformed_json":
        text = json.dumps(event)
        return text[: rng.randrange(1, len(text) - 1)]
    if reason in {"missing_event_id", "missing_customer_id", "missing_event_type"}:
        event.pop(reason.removeprefix("missing_"))
    elif reason == "missing_timestamp":
        event.pop("timestamp")
    elif reason == "invalid_timestamp":
        event["timestamp"] = rng.choice(
            ["2026-13-45T10:00:00Z", "yesterday", event["timestamp"][:19], "1694340000"]
        )
    elif reason == "future_timestamp":
        event["timestamp"] = event["timestamp"].replace(
            str(first_month.year), str(first_month.year + 10), 1
        )
    elif reason == "unknown_customer":
        event["customer_id"] = f"cust_x{rng.randrange(10**6):06d}"
    elif reason == "unknown_event_type":
        event["event_type"] = rng.choice(["page_view", "api_calls", "Api_Call"])
    elif reason == "invalid_properties":
        event["properties"] = rng.choice([["tokens", 12], "not-an-object", 42])
    elif reason == "missing_value":
        event["event_type"] = "llm_tokens"
        event["properties"] = {"model": "gpt-4", "tokens_input": 120}
    elif reason == "non_numeric_value":
        event["event_type"] = "llm_tokens"
        event["properties"] = {"model": "gpt-4", "tokens_input": "lots", "tokens_output": 7}
    return event_line(event)


def reversal_of(
    event_id: str, customer_id: str, event_type: str, timestamp: str, reverses_event_id: str
) -> dict:
    """A correction event (architecture §6.5): it carries no properties, only what it cancels."""
    return {
        "event_id": event_id,
        "customer_id": customer_id,
        "event_type": event_type,
        "timestamp": timestamp,
        "reverses_event_id": reverses_event_id,
    }


def changed_payload(event: dict, rng: random.Random) -> dict:
    """Same event_id, different content: what a buggy producer retry sends."""
    conflict = json.loads(json.dumps(event))
    properties = conflict["properties"]
    numeric = [k for k, v in properties.items() if isinstance(v, int | float)]
    if numeric:
        key = rng.choice(numeric)
        properties[key] = properties[key] + rng.randint(1, 50)
    else:
        properties["retry_note"] = "changed"
    return conflict


def write_landing_file(landing_dir: Path, landing: LandingFile) -> None:
    ordered = sorted(landing.entries, key=lambda entry: entry[0])
    path = landing_dir / landing.name
    if landing.fmt == "parquet":
        rows = [json.loads(line) for _, line, _ in ordered]
        frame = pd.DataFrame(
            {
                "event_id": [r["event_id"] for r in rows],
                "customer_id": [r["customer_id"] for r in rows],
                "event_type": [r["event_type"] for r in rows],
                "timestamp": [r["timestamp"] for r in rows],
                "properties": [json.dumps(r["properties"]) for r in rows],
                "reverses_event_id": [None] * len(rows),
            }
        ).astype({"reverses_event_id": "string"})
        con = duckdb.connect()
        con.register("frame", frame)
        con.execute(f"copy frame to '{path.as_posix()}' (format parquet)")
        con.close()
        return
    payload = ("\n".join(line for _, line, _ in ordered) + "\n").encode("utf-8")
    if landing.fmt == "jsonl.gz":
        payload = gzip.compress(payload, mtime=0)
    path.write_bytes(payload)


def file_format_for(day_number: int, day_count: int) -> str:
    """Mostly JSON Lines, every seventh day gzipped, one bulk day as Parquet."""
    if day_number == day_count - 20:
        return "parquet"
    return "jsonl.gz" if day_number % 7 == 6 else "jsonl"


def producer_key(line: str) -> tuple[str, str, str] | None:
    """(UTC report date, customer, event type) as the producer counts a line, or None.

    A producer counts what it sent under the customer, type and time it sent; a line that
    lacks one of them, or whose timestamp has no readable offset, cannot be counted by day.
    """
    try:
        event = json.loads(line)
        customer_id, event_type = event["customer_id"], event["event_type"]
        moment = datetime.fromisoformat(event["timestamp"])
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(customer_id, str) or not isinstance(event_type, str):
        return None
    if moment.tzinfo is None:
        return None
    return (moment.astimezone(UTC).date().isoformat(), customer_id, event_type)


def control_totals(files: list[LandingFile]) -> Counter:
    """What the producer says it sent: every line it wrote once, by report date and key.

    Re-deliveries of the same line (the generator's `duplicate` outcome) are retries the
    producer does not count again.
    """
    totals: Counter = Counter()
    for landing in files:
        for _, line, outcome in landing.entries:
            key = None if outcome == "duplicate" else producer_key(line)
            if key is not None:
                totals[key] += 1
    return totals


def write_control_totals(
    landing_dir: Path, totals: Counter, first_month: date, suffix: str = ""
) -> list[str]:
    """One control file per report month: CSV for the first month, JSON Lines after it."""
    by_month: dict[str, list] = {}
    for key in sorted(totals):
        by_month.setdefault(key[0][:7], []).append((*key, totals[key]))
    names = []
    for month, rows in by_month.items():
        if month == first_month.isoformat()[:7]:
            name = f"{CONTROL_PREFIX}{month}{suffix}.csv"
            text = "report_date,customer_id,event_type,event_count\n" + "".join(
                f"{d},{c},{t},{n}\n" for d, c, t, n in rows
            )
        else:
            name = f"{CONTROL_PREFIX}{month}{suffix}.jsonl"
            text = "".join(
                json.dumps({"report_date": d, "customer_id": c, "event_type": t, "event_count": n})
                + "\n"
                for d, c, t, n in rows
            )
        (landing_dir / name).write_text(text, encoding="utf-8")
        names.append(name)
    return names


def inject_spikes(
    options: GenerateOptions,
    customers: list[Customer],
    days: list[date],
    events: list[tuple[date, float, dict]],
    files: dict[date, LandingFile],
    sequence: int,
) -> list[Spike]:
    """Add SPIKE_FACTOR times a customer's usual api calls on chosen days (the anomalies).

    A separate random stream keeps every other line identical to a run without spikes.
    """
    rng = random.Random(options.seed * 7919 + 1)
    factory = EventFactory(rng, customers)
    factory.sequence = sequence
    per_day = Counter(
        (event["customer_id"], day)
        for day, _, event in events
        if event["event_type"] == SPIKE_EVENT_TYPE
    )
    candidates = []
    for index, customer in enumerate(customers, start=1):
        if SPIKE_EVENT_TYPE not in PLAN_EVENT_MIX[customer.plan_id]:
            continue
        active = customer_days(customer, index, days, options.first_month)
        candidates += [(customer.customer_id, day) for day in active[SPIKE_MIN_HISTORY_DAYS:]]
    spikes = []
    used_customers: set[str] = set()
    for customer_id, day in rng.sample(candidates, len(candidates)):
        if len(spikes) == options.spikes:
            break
        usual = per_day[(customer_id, day)]
        if (
            customer_id in used_customers
            or usual < SPIKE_MIN_USUAL_EVENTS
            or files[day].fmt == "parquet"
        ):
            continue
        used_customers.add(customer_id)
        extra = usual * (SPIKE_FACTOR - 1)
        for _ in range(extra):
            second = rng.randrange(86400)
            event = {
                "event_id": factory.next_id(),
                "customer_id": customer_id,
                "event_type": SPIKE_EVENT_TYPE,
                "timestamp": format_utc(day, second),
                "properties": factory.properties(SPIKE_EVENT_TYPE, customer_id, 0),
            }
            files[day].add(second + rng.random(), event_line(event), "accepted")
        spikes.append(Spike(customer_id, day, usual, extra))
    return sorted(spikes, key=lambda spike: (spike.day, spike.customer_id))


def build_record(files: list[LandingFile], options: GenerateOptions, offsets: int) -> dict:
    """The expected routing of every line, per file and in total."""
    per_file = {}
    totals: Counter = Counter()
    for landing in files:
        counts = Counter(outcome.removesuffix(":reversal") for _, _, outcome in landing.entries)
        per_file[landing.name] = dict(sorted(counts.items()))
        totals.update(counts)
        totals["accepted:reversal"] += sum(o == "accepted:reversal" for _, _, o in landing.entries)
    quarantined = {k.split(":", 1)[1]: v for k, v in totals.items() if k.startswith("quarantined:")}
    return {
        "options": {
            "events": options.events,
            "customers": options.customers,
            "months": options.months,
            "first_month": options.first_month.isoformat(),
            "seed": options.seed,
            "spikes": options.spikes,
            "control_totals": options.control_totals,
        },
        "raw_rows": sum(v for k, v in totals.items() if k != "accepted:reversal"),
        "accepted": totals["accepted"],
        "duplicate": totals["duplicate"],
        "quarantined": sum(quarantined.values()),
        "quarantined_by_reason": dict(sorted(quarantined.items())),
        "offset_timestamps": offsets,
        "reversals": totals["accepted:reversal"],
        "files": per_file,
    }


def split_held_out(
    files: dict[date, LandingFile], held_out_days: int
) -> tuple[list[LandingFile], list[LandingFile]]:
    """The files that land now and those of the last `held_out_days` days, which land later."""
    ordered = [files[day] for day in sorted(files)]
    cut = len(ordered) - held_out_days
    return ordered[:cut], ordered[cut:]


def clear_landing(landing_dir: Path) -> None:
    """Remove the event and control files an earlier run of the generator wrote here."""
    landing_dir.mkdir(parents=True, exist_ok=True)
    for stale in [*landing_dir.glob(f"{FILE_PREFIX}*"), *landing_dir.glob(f"{CONTROL_PREFIX}*")]:
        stale.unlink()


def generate(
    options: GenerateOptions,
    landing_dir: Path,
    seeds_dir: Path,
    record_path: Path,
    held_out_dir: Path | None = None,
) -> dict:
    """Write the demo's accounts, landing files and the record of what was injected; return
    the record. The rate cards are read from `seeds_dir`, never written. The files of the
    last `options.held_out_days` days go to `held_out_dir` with control rows that restate
    (replace) the counts of every key those files touch, as a producer's correction would."""
    rng = random.Random(options.seed)
    prepare_seeds_dir(seeds_dir)
    customers = make_customers(options.customers, rng, plan_currencies(seeds_dir))
    write_accounts(
        seeds_dir, account_rows(customers, options.first_month), options.replace_accounts
    )
    end = add_months(options.first_month, options.months)
    days = [
        options.first_month + timedelta(days=i) for i in range((end - options.first_month).days)
    ]
    files = {
        day: LandingFile(
            f"{FILE_PREFIX}{day.isoformat()}.{file_format_for(i, len(days))}",
            file_format_for(i, len(days)),
        )
        for i, day in enumerate(days)
    }
    factory = EventFactory(rng, customers)
    duplicates = max(1, round(options.events * DUPLICATE_RATE))
    conflicts = max(1, round(options.events * CONFLICT_RATE))
    messes = max(1, round(options.events * MESS_RATE))
    budget = options.events - duplicates - conflicts - messes * len(injected_reasons())
    events = clean_events(options, customers, days, factory, budget)
    offsets = 0
    for day, key, event in events:
        files[day].add(key, event_line(event), "accepted")
        offsets += not event["timestamp"].endswith("Z")

    jsonl_days = [day for day in days if files[day].fmt != "parquet"]
    picks = rng.sample(range(len(events)), duplicates + conflicts)
    for number, pick in enumerate(picks):
        day, key, event = events[pick]
        later = [d for d in jsonl_days if d >= day][:3]
        target = rng.choice(later) if later else jsonl_days[-1]
        copy_key = rng.uniform(key, 86400) if target == day else rng.uniform(0, 86400)
        if number < duplicates:
            files[target].add(copy_key, event_line(event), "duplicate")
        else:
            line = event_line(changed_payload(event, rng))
            files[target].add(copy_key, line, "quarantined:idempotency_conflict")

    reversal_count = max(1, round(options.events * REVERSAL_RATE))
    taken = set(picks)
    candidates = [
        n
        for n in rng.sample(range(len(events)), reversal_count + 2 * messes + 10)
        if n not in taken
    ]
    for number, pick in enumerate(candidates[: reversal_count + messes]):
        day, key, event = events[pick]
        later = [d for d in jsonl_days if d >= day][:3] or [jsonl_days[-1]]
        target = rng.choice(later)
        first_key = rng.uniform(key, 86400) if target == day else rng.uniform(0, 86000)
        reversal = reversal_of(
            factory.next_id(),
            event["customer_id"],
            event["event_type"],
            format_utc(target, int(first_key)),
            event["event_id"],
        )
        files[target].add(first_key, event_line(reversal), "accepted:reversal")
        if number >= reversal_count:
            # A second reversal of the same event, after the first: refused.
            again = dict(reversal, event_id=factory.next_id())
            again_key = rng.uniform(first_key, 86400)
            files[target].add(
                again_key, event_line(again), "quarantined:reversal_of_reversed_event"
            )
    for pick in candidates[reversal_count + messes : reversal_count + 2 * messes]:
        day, key, event = events[pick]
        other = next(c.customer_id for c in customers if c.customer_id != event["customer_id"])
        mismatch = reversal_of(
            factory.next_id(),
            other,
            event["event_type"],
            format_utc(day, int(key)),
            event["event_id"],
        )
        files[rng.choice(jsonl_days)].add(
            rng.uniform(0, 86400), event_line(mismatch), "quarantined:reversal_mismatch"
        )
    for _ in range(messes):
        day = rng.choice(jsonl_days)
        customer = rng.choice(customers)
        unknown = reversal_of(
            factory.next_id(),
            customer.customer_id,
            "api_call",
            format_utc(day, rng.randrange(86400)),
            f"evt_never_sent_{rng.randrange(10**9)}",
        )
        files[day].add(
            rng.uniform(0, 86400), event_line(unknown), "quarantined:reversal_of_unknown_event"
        )

    for reason in injected_reasons():
        for _ in range(messes):
            day = rng.choice(jsonl_days)
            customer = rng.choice(customers)
            base = {
                "event_id": factory.next_id(),
                "customer_id": customer.customer_id,
                "event_type": "api_call",
                "timestamp": format_utc(day, rng.randrange(86400)),
                "properties": factory.properties("api_call", customer.customer_id, 0),
            }
            files[day].add(
                rng.uniform(0, 86400),
                messy_event(reason, base, rng, options.first_month),
                f"quarantined:{reason}",
            )

    spikes = inject_spikes(options, customers, days, events, files, factory.sequence)

    kept, held_out = split_held_out(files, options.held_out_days)
    clear_landing(landing_dir)
    for landing in tqdm(kept, desc="write", unit="file"):
        write_landing_file(landing_dir, landing)
    record = build_record(list(files.values()), options, offsets)
    record["spikes"] = [
        {
            "customer_id": spike.customer_id,
            "date": spike.day.isoformat(),
            "event_type": SPIKE_EVENT_TYPE,
            "usual_events": spike.usual_events,
            "extra_events": spike.extra_events,
        }
        for spike in spikes
    ]
    record["control_files"] = (
        write_control_totals(landing_dir, control_totals(kept), options.first_month)
        if options.control_totals
        else []
    )
    if held_out:
        if held_out_dir is None:
            raise ValueError("held_out_days needs a held_out_dir to write the later days to")
        clear_landing(held_out_dir)
        for landing in held_out:
            write_landing_file(held_out_dir, landing)
        if options.control_totals:
            everything = control_totals(list(files.values()))
            restated = Counter({key: everything[key] for key in control_totals(held_out)})
            first_held = held_out[0].name.removeprefix(FILE_PREFIX)[:10]
            record["held_out_control_files"] = write_control_totals(
                held_out_dir, restated, options.first_month, f"-from-{first_held}"
            )
    record_path.parent.mkdir(parents=True, exist_ok=True)
    record_path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record
