"""`make bench`: time each step of the pipeline on generated data, in a scratch workspace.

Speed is measured here, never by a timed test. The figures go into closing notes and the
README's performance table. `quality` is every Great Expectations gate over the whole
range (GX's import and set-up included).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from billing.landing import ingest_files
from billing.quality import data_range, run_quality
from billing.sample.generate import GenerateOptions, generate
from billing.settings import PROJECT_DIR, Settings, quiet_environment
from billing.warehouse.build import build, parse_as_of


def timed(label: str, step: Callable[[], object], timings: list[tuple[str, float]]) -> object:
    started = time.perf_counter()
    result = step()
    timings.append((label, time.perf_counter() - started))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--as-of", default="2026-12-01T00:00:00Z")
    args = parser.parse_args(argv)
    quiet_environment()
    scratch = Path(tempfile.mkdtemp(prefix="billing-bench-"))
    seeds_dir = PROJECT_DIR / "target" / "bench-seeds"
    settings = Settings(scratch / "warehouse.duckdb", scratch / "landing", seeds_dir)
    timings: list[tuple[str, float]] = []
    try:
        record = timed(
            "generate",
            lambda: generate(
                GenerateOptions(events=args.events),
                settings.landing_dir,
                seeds_dir,
                scratch / "record.json",
            ),
            timings,
        )
        timed(
            "ingest",
            lambda: ingest_files(settings.warehouse, [settings.landing_dir], settings.landing_dir),
            timings,
        )
        as_of = parse_as_of(args.as_of)
        timed("build", lambda: build(settings, as_of), timings)
        timed("rebuild", lambda: build(settings, as_of), timings)
        timed(
            "quality",
            lambda: run_quality(settings.warehouse, data_range(settings.warehouse)),
            timings,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        shutil.rmtree(seeds_dir, ignore_errors=True)
    rows = record["raw_rows"]
    print(f"\nbenchmark: {rows:,} raw lines, 2 cores")
    for label, seconds in timings:
        print(f"  {label:<9} {seconds:7.1f} s  {rows / seconds:>12,.0f} lines/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
