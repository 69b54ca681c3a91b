"""The generator is deterministic, writes only the demo's accounts (the committed ones are
exactly what it writes), reads the rate cards and never overwrites someone's edits."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date

import pytest

from billing.sample.generate import GenerateOptions, format_utc, generate, with_offset
from billing.seeds import SeedsError
from billing.settings import DEFAULT_SEEDS_DIR

SMALL = GenerateOptions(events=3_000, customers=8, months=1, first_month=date(2026, 9, 1), seed=3)


def digest(folder) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_same_seed_gives_identical_files(tmp_path):
    first = generate(SMALL, tmp_path / "a", tmp_path / "sa", tmp_path / "a.json")
    second = generate(SMALL, tmp_path / "b", tmp_path / "sb", tmp_path / "b.json")
    assert first == second
    assert digest(tmp_path / "a") == digest(tmp_path / "b")
    assert digest(tmp_path / "sa") == digest(tmp_path / "sb")
    assert len(first["files"]) == 30


def test_record_adds_up(tmp_path):
    record = generate(SMALL, tmp_path / "a", tmp_path / "s", tmp_path / "a.json")
    assert record["raw_rows"] == record["accepted"] + record["duplicate"] + record["quarantined"]
    assert record["duplicate"] == 30  # 1 % of 3,000 requested events
    assert record["quarantined_by_reason"]["idempotency_conflict"] == 2  # 0.05 %, rounded


def test_committed_accounts_are_what_the_generator_writes(tmp_path):
    defaults = GenerateOptions(events=1_000)
    generate(defaults, tmp_path / "landing", tmp_path / "seeds", tmp_path / "r.json")
    assert digest(tmp_path / "seeds" / "accounts") == digest(DEFAULT_SEEDS_DIR / "accounts")


def test_the_generator_reads_the_rate_cards_and_never_writes_them(tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(DEFAULT_SEEDS_DIR, seeds)
    # A price someone changed by hand, and a plan they added, survive a generate.
    plans = seeds / "rate_cards" / "plans.csv"
    plans.write_text(plans.read_text() + "gpu_usd,GPU Cloud,USD,99.00,\n")
    before = digest(seeds / "rate_cards")
    generate(SMALL, tmp_path / "landing", seeds, tmp_path / "r.json")
    assert digest(seeds / "rate_cards") == before
    # A demo plan the rate cards lack is a clear error, not a crash.
    plans.write_text("plan_id,plan_name,currency,base_fee,minimum_commitment\n")
    with pytest.raises(SeedsError, match=r"plans the rate cards lack .*growth_eur"):
        generate(SMALL, tmp_path / "landing", seeds, tmp_path / "r.json")


def test_the_generator_never_overwrites_edited_accounts(tmp_path):
    seeds = tmp_path / "seeds"
    shutil.copytree(DEFAULT_SEEDS_DIR, seeds)
    # Its own earlier output (other options) is replaced without asking.
    generate(SMALL, tmp_path / "landing", seeds, tmp_path / "r.json")
    customers = seeds / "accounts" / "customers.csv"
    assert customers.read_text().count("\n") == 1 + 8
    # A customer added by hand is not.
    customers.write_text(customers.read_text() + "acme_gpu,Acme GPU,USD,0,,UTC\n")
    edited = customers.read_text()
    with pytest.raises(SeedsError, match=r"has edits the generator did not make \(customers.csv\)"):
        generate(SMALL, tmp_path / "landing", seeds, tmp_path / "r.json")
    assert customers.read_text() == edited
    options = GenerateOptions(**{**SMALL.__dict__, "replace_accounts": True})
    generate(options, tmp_path / "landing", seeds, tmp_path / "r.json")
    assert "acme_gpu" not in customers.read_text()


def test_offsets_name_the_same_instant():
    assert format_utc(date(2026, 9, 30), 23 * 3600 + 30 * 60) == "2026-09-30T23:30:00Z"
    assert (
        with_offset(date(2026, 9, 30), 23 * 3600 + 30 * 60, "+02:00") == "2026-10-01T01:30:00+02:00"
    )
    assert with_offset(date(2026, 9, 1), 3600, "-05:00") == "2026-08-31T20:00:00-05:00"


def test_spikes_leave_every_other_line_unchanged(tmp_path):
    plain = generate(SMALL, tmp_path / "a", tmp_path / "sa", tmp_path / "a.json")
    spiky_options = GenerateOptions(**{**SMALL.__dict__, "spikes": 2})
    spiky = generate(spiky_options, tmp_path / "b", tmp_path / "sb", tmp_path / "b.json")
    assert plain["spikes"] == []
    assert [s["extra_events"] for s in spiky["spikes"]] == [
        9 * s["usual_events"] for s in spiky["spikes"]
    ]
    assert all(s["usual_events"] >= 5 for s in spiky["spikes"])
    extra = sum(s["extra_events"] for s in spiky["spikes"])
    assert spiky["accepted"] == plain["accepted"] + extra
    spike_days = {f"events-{s['date']}.jsonl" for s in spiky["spikes"]}
    changed = {
        name for name, sha in digest(tmp_path / "a").items() if digest(tmp_path / "b")[name] != sha
    }
    # Only the spike days' event files and the control totals of their months change.
    months = {f"control-totals-{s['date'][:7]}" for s in spiky["spikes"]}
    assert {n for n in changed if n.startswith("events-")} == spike_days
    assert {n.rsplit(".", 1)[0] for n in changed if n.startswith("control-")} <= months
