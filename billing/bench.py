"""`make bench`: the pipeline against a hand-written reference, on the same generated month.

Speed is measured here, never by a timed test. One invocation generates a month of events,
lands all of it but its last day, builds (the full build), builds once more with nothing
new (the rebuild), lands the last day and builds again (the daily run), runs the
reference SQL pipeline of bench/reference.sql over the same raw rows, checks that the
reference and the project agree on every usage line to the cent, and runs the quality
gates. Each step runs in its own process, so its peak RSS is its own. The table is printed
and written as JSON to target/bench/.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb

from billing.rules.calendar import add_months
from billing.sample.generate import GenerateOptions, generate
from billing.seeds import read_seed
from billing.settings import PROJECT_DIR, Settings, quiet_environment
from billing.warehouse.build import phase_times

REFERENCE_SQL = PROJECT_DIR / "bench" / "reference.sql"
RESULTS_DIR = PROJECT_DIR / "target" / "bench"
SEEDS_DIR = PROJECT_DIR / "target" / "bench-seeds"
# What bench/reference.sql implements; a rate card beyond it cannot be compared.
REFERENCE_CHARGE_MODELS = {"standard", "graduated", "volume", "package", "staircase"}
REFERENCE_AGGREGATIONS = {"count", "sum", "max", "unique_count"}
HELD_OUT = "held-out"

PROJECT_USAGE_SQL = """
select customer_id, billing_period_start, charge_id, currency, sum(amount) as amount
from marts.fct_invoice_line_items
where line_type = 'usage'
group by all
"""


def reference_gaps(seeds_dir: Path) -> list[str]:
    """What the rate card uses that the reference pipeline does not implement (empty when
    the comparison is meaningful): it covers the demo rate card and no more."""
    gaps = []
    for charge in read_seed(seeds_dir, "plan_charges"):
        name = charge["charge_id"]
        if charge["charge_model"] not in REFERENCE_CHARGE_MODELS:
            gaps.append(f"{name}: charge model {charge['charge_model']}")
        if (charge["quantity_rounding"] or "none") not in {"up", "none"} or (
            charge["quantity_precision"] or "0"
        ) != "0":
            gaps.append(f"{name}: quantity rounding {charge['quantity_rounding']}")
        if charge["min_amount"] or charge["max_amount"]:
            gaps.append(f"{name}: a minimum or maximum amount")
        if charge["package_size"] and Decimal(charge["package_size"]) % 1:
            gaps.append(f"{name}: a fractional package size")
    for meter in read_seed(seeds_dir, "meters"):
        if meter["aggregation"] not in REFERENCE_AGGREGATIONS:
            gaps.append(f"{meter['meter_id']}: aggregation {meter['aggregation']}")
    if read_seed(seeds_dir, "subscription_overrides"):
        gaps.append("subscription price overrides")
    return gaps


def reference_sql(seeds_dir: Path, as_of: str, tolerance_minutes: int) -> str:
    return REFERENCE_SQL.read_text(encoding="utf-8").format(
        seeds=seeds_dir.as_posix(), as_of=as_of, tolerance=tolerance_minutes
    )


def usage_totals(con: duckdb.DuckDBPyConnection, sql: str) -> dict[tuple, Decimal]:
    """Usage amount per customer x period x charge x currency, zero lines left out (a charge
    without usage may or may not have a line; it bills nothing either way)."""
    return {
        (customer, period, charge, currency): Decimal(amount)
        for customer, period, charge, currency, amount in con.execute(sql).fetchall()
        if amount
    }


def compare_usage(project: dict, reference: dict) -> dict:
    """Lines where the two pipelines differ, and each side's total."""
    differing = sorted(
        key
        for key in project.keys() | reference.keys()
        if project.get(key, 0) != reference.get(key, 0)
    )
    return {
        "usage_lines": len(project),
        "differing_lines": len(differing),
        "first_differences": [
            [str(part) for part in key] + [str(project.get(key)), str(reference.get(key))]
            for key in differing[:5]
        ],
        "project_total": str(sum(project.values(), Decimal(0))),
        "reference_total": str(sum(reference.values(), Decimal(0))),
    }


def verdict_of(compared: dict) -> str:
    """agree, disagree, or empty: a month that priced no usage line checked nothing, so it
    is no pass."""
    if compared["usage_lines"] == 0:
        return "empty"
    return "agree" if compared["differing_lines"] == 0 else "disagree"


def run_step(step: str, scratch: Path, as_of: str) -> dict:
    """One step in this process; returns its seconds and peak RSS (the process's own)."""
    from billing.landing import ingest_files
    from billing.quality import FUTURE_TOLERANCE_MINUTES, data_range, run_quality
    from billing.warehouse.build import build, parse_as_of

    settings = Settings(scratch / "warehouse.duckdb", scratch / "landing", SEEDS_DIR)
    started = time.perf_counter()
    extra: dict = {}
    if step in {"ingest", "ingest_day"}:
        folder = settings.landing_dir if step == "ingest" else scratch / HELD_OUT
        ingest_files(settings.warehouse, [folder], folder)
    elif step in {"build", "daily", "rebuild"}:
        outcome = build(settings, parse_as_of(as_of))
        extra = {
            "phases": outcome.seconds,
            "slowest_nodes": slowest_nodes(
                (result.node.unique_id, result.execution_time) for result in outcome.results
            ),
        }
    elif step == "reference":
        with duckdb.connect(str(settings.warehouse), read_only=True) as con:
            sql = reference_sql(SEEDS_DIR, as_of, FUTURE_TOLERANCE_MINUTES)
            reference = usage_totals(con, sql)
            elapsed = time.perf_counter() - started
            project = usage_totals(con, PROJECT_USAGE_SQL)
        extra = compare_usage(project, reference)
        return {"seconds": elapsed, "peak_rss_gb": peak_rss_gb(), **extra}
    elif step == "quality":
        run_quality(settings.warehouse, data_range(settings.warehouse))
    else:
        raise ValueError(f"unknown step {step}")
    return {"seconds": time.perf_counter() - started, "peak_rss_gb": peak_rss_gb(), **extra}


def slowest_nodes(timings: Iterable[tuple[str, float]], count: int = 10) -> list[list]:
    """The dbt nodes that took longest, `[unique_id, seconds]`, slowest first.

    A step's seconds alone do not say what to make faster; its largest nodes do, and the
    JSON result keeps them beside the figures they explain.
    """
    ranked = sorted(timings, key=lambda timing: (-timing[1], timing[0]))
    return [[unique_id, round(seconds, 2)] for unique_id, seconds in ranked[:count]]


def peak_rss_gb(status: str | None = None) -> float:
    """This process's own peak resident memory, in GiB: `VmHWM` of /proc/self/status.

    Not `ru_maxrss`: Linux carries the parent's resident size over into a child's
    `ru_maxrss` at exec, so every step would report at least what the parent held after
    generating the month (5.1 GB at 5 M lines, even for a 0.8 s ingest). `VmHWM` belongs
    to the step's own address space; dbt, DuckDB and GX all run inside it.
    """
    if status is None:
        status = Path("/proc/self/status").read_text(encoding="ascii")
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024 / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 / 1024


def in_subprocess(step: str, scratch: Path, as_of: str) -> dict:
    """A step in a fresh interpreter, so its peak memory is measured alone."""
    command = [sys.executable, "-m", "billing.bench", "--step", step, "--scratch", str(scratch)]
    completed = subprocess.run(
        [*command, "--as-of", as_of],
        check=False,
        stdout=subprocess.PIPE,
        text=True,
    )
    if completed.returncode != 0:
        raise StepFailed(step, completed.returncode, completed.stdout)
    return json.loads(completed.stdout.strip().splitlines()[-1])


class StepFailed(Exception):
    """A bench step exited non-zero. Its output (dbt's log, which says which node failed
    and why) is kept, so the bench can show it instead of a bare exit status."""

    def __init__(self, step: str, returncode: int, output: str) -> None:
        tail = "\n".join(output.strip().splitlines()[-40:])
        super().__init__(f"bench step {step} failed (exit {returncode}); its last output:\n{tail}")


def history_start(last_month: date, months: int) -> date:
    """The first month of `months` months of history that end with `last_month`.

    Every run ends in the same month, the generator's default (a month before today),
    however long its history: ingest stamps files with the wall clock, and a history that
    ran past today would date its last months' events after their files were loaded, which
    the staged-events gate rightly fails.
    """
    return add_months(last_month, 1 - months)


def step_as_of(step: str, first_month: date, months: int = 1) -> str:
    """The clock of each step: the last month's last day dawns for the full build and the
    rebuild, and the daily run sees that day's end, so the last month stays open and its
    usage lines are the ones both pipelines price (a closed month would turn the held-out
    day into next month's late-usage adjustments). Earlier months are closed: their
    invoices are finalized."""
    last_day = add_months(first_month, months) - timedelta(days=1)
    clock = "00:00:00" if step in {"ingest", "build", "rebuild"} else "23:59:59"
    return f"{last_day.isoformat()}T{clock}Z"


def table(rows: int, day_rows: int, steps: dict, months: int = 1) -> list[str]:
    """The printed table: seconds, lines/s, peak RSS, and the ratios the targets use."""
    reference = steps["reference"]["seconds"]
    full = steps["build"]["seconds"]
    span = "a month" if months == 1 else f"{months} months"
    lines = [
        f"benchmark: {rows:,} raw lines in {span} ({day_rows:,} in its last day), 2 cores",
        f"  {'step':<12}{'seconds':>9}{'lines/s':>13}{'peak RSS':>10}  note",
    ]
    notes = {
        "build": f"{full / reference:.1f}x the reference",
        "daily": f"{steps['daily']['seconds'] / full:.0%} of the full build",
        "rebuild": "nothing new landed",
        "reference": "bench/reference.sql",
    }
    for step, figures in steps.items():
        counted = day_rows if step in {"ingest_day", "daily"} else rows
        note = "; ".join(
            part for part in (notes.get(step, ""), phase_times(figures.get("phases", {}))) if part
        )
        lines.append(
            f"  {step:<12}{figures['seconds']:>9.1f}{counted / figures['seconds']:>13,.0f}"
            f"{figures['peak_rss_gb']:>8.2f}GB  {note}"
        )
    compared = steps["reference"]
    verdict = {"agree": "agree", "disagree": "DISAGREE", "empty": "FOUND NO USAGE"}[
        verdict_of(compared)
    ]
    lines.append(
        f"  usage lines: project and reference {verdict} on {compared['usage_lines']:,} lines "
        f"({compared['differing_lines']} differ; totals {compared['project_total']} / "
        f"{compared['reference_total']})"
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events per month")
    parser.add_argument(
        "--months",
        type=int,
        default=1,
        help="months of history before the daily run (the earlier ones closed and finalized)",
    )
    parser.add_argument("--as-of", help=argparse.SUPPRESS)
    parser.add_argument(
        "--keep", action="store_true", help="keep the scratch warehouse and landing files"
    )
    parser.add_argument("--step", help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    quiet_environment()
    if args.step:
        print(json.dumps(run_step(args.step, args.scratch, args.as_of)))
        return 0
    scratch = Path(tempfile.mkdtemp(prefix="billing-bench-"))
    if args.months < 1:
        parser.error("--months must be at least 1")
    options = GenerateOptions(
        events=args.events * args.months,
        months=args.months,
        held_out_days=1,
        first_month=history_start(GenerateOptions.first_month, args.months),
    )
    try:
        started = time.perf_counter()
        record = generate(
            options,
            scratch / "landing",
            SEEDS_DIR,
            scratch / "record.json",
            held_out_dir=scratch / HELD_OUT,
        )
        steps = {"generate": {"seconds": time.perf_counter() - started, "peak_rss_gb": 0.0}}
        gaps = reference_gaps(SEEDS_DIR)
        if gaps:
            print("the reference pipeline cannot price this rate card: " + "; ".join(gaps))
            return 1
        for step in ("ingest", "build", "rebuild", "ingest_day", "daily", "reference", "quality"):
            as_of = step_as_of(step, options.first_month, options.months)
            steps[step] = in_subprocess(step, scratch, as_of)
        with duckdb.connect(str(scratch / "warehouse.duckdb"), read_only=True) as con:
            day_rows = con.execute(
                "select count(*) from raw.raw_events where loaded_at = "
                "(select max(loaded_at) from raw.landed_files)"
            ).fetchone()[0]
    except StepFailed as failure:
        print(failure, file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"scratch kept in {scratch}; its seeds in {SEEDS_DIR}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)
            shutil.rmtree(SEEDS_DIR, ignore_errors=True)
    rows = record["raw_rows"]
    lines = table(rows, day_rows, steps, options.months)
    print("\n" + "\n".join(lines))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    suffix = "" if options.months == 1 else f"-{options.months}-months"
    result = RESULTS_DIR / f"bench-{args.events}{suffix}.json"
    summary = {"raw_lines": rows, "day_lines": day_rows, "months": options.months, "steps": steps}
    result.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"  written to {result.relative_to(PROJECT_DIR)}")
    return 0 if verdict_of(steps["reference"]) == "agree" else 1


if __name__ == "__main__":
    raise SystemExit(main())
