"""Ingest and staging over generated hostile input (D73): never a traceback, every raw line
routed exactly once per file, every valid line accepted exactly once.

Hypothesis writes the files (random bytes, invalid UTF-8, NUL, a BOM, CRLF, huge and
deeply nested lines, arrays, duplicate keys, numeric strings, 1e400, NaN, time zone offsets,
far-future and far-past timestamps, SQL quote characters in every field and in file names);
they are landed and staged in one build, so one dbt run checks every example.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass

import pytest
from conftest import query, write_seeds
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from billing.landing import file_hash, ingest_files
from billing.warehouse.build import build

AS_OF = "2026-10-05T00:00:00Z"
EXAMPLES = 60
QUOTES = "'\";--\\`%_*?[]{}"
TEXT = st.text(alphabet=st.characters(blacklist_categories=["Cs"]) | st.sampled_from(QUOTES))
# Any text but a line end: the landing splits on LF, CR and CRLF, so a line end inside a
# generated line would make it two lines and the expected count wrong.
ONE_LINE = TEXT.map(lambda text: text.replace("\n", " ").replace("\r", " "))


def seeds() -> dict:
    """One customer on one plan pricing API calls at 0.01 and stored GB at 0.50."""
    return {
        "currencies": [["USD", "2"]],
        "customers": [["c1", "One Co", "USD", "0", "", "UTC"]],
        "meters": [
            ["api_calls", "api_call", "count", "", "", "call", "API calls"],
            ["storage_gb", "storage", "sum", "gb", "", "GB", "Stored GB"],
        ],
        "plans": [["p1", "Plan", "USD", "0", ""]],
        "plan_charges": [
            [charge, "p1", meter, "", "standard", price, "", "", "", "none", "", "", "", charge]
            for charge, meter, price in [
                ("ch_calls", "api_calls", "0.01"),
                ("ch_gb", "storage_gb", "0.50"),
            ]
        ],
        "plan_charge_tiers": [],
        "subscriptions": [["s1", "c1", "p1", "2026-01-01", ""]],
        "subscription_overrides": [],
        "credit_grants": [],
        "discounts": [],
    }


@dataclass(frozen=True)
class Line:
    """One generated line and what must become of it: `accepted` (a valid event),
    `not_accepted` (not even a JSON object) or `any` (event-shaped junk whose verdict is
    staging's business: routed once, with a reason if quarantined)."""

    raw: bytes
    expect: str


def valid_event(timestamp: str, endpoint: str) -> dict:
    return {
        "customer_id": "c1",
        "event_type": "api_call",
        "timestamp": timestamp,
        "properties": {"endpoint": endpoint},
    }


OFFSETS = st.sampled_from(["Z", "+00:00", "+02:00", "-05:30", "+14:00", "-12:00"])
SEPTEMBER = st.builds(
    lambda day, hour, minute, offset: f"2026-09-{day:02d}T{hour:02d}:{minute:02d}:00{offset}",
    st.integers(2, 28),
    st.integers(0, 23),
    st.integers(0, 59),
    OFFSETS,
)
ODD_TIMESTAMPS = st.sampled_from(
    ["9999-12-31T23:59:59Z", "0001-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "1e400", "", "NaN"]
)
ODD_VALUES = st.sampled_from(
    ["1e400", "NaN", "-0", "0x10", "\uff11\uff12", "9" * 60, "1_000", " 7 ", "Infinity", "1e-400"]
)


def shaped(expect: str, event: st.SearchStrategy) -> st.SearchStrategy:
    """An event object (its id given when the file is written) and what must become of it."""
    return event.map(lambda body: (expect, body))


def raw(expect: str, data: st.SearchStrategy) -> st.SearchStrategy:
    return data.map(lambda body: (expect, body))


VALID = shaped("accepted", st.builds(valid_event, SEPTEMBER, ONE_LINE))
NOT_OBJECTS = raw(
    "not_accepted",
    st.one_of(
        # random bytes, invalid UTF-8 and NUL included, but no line end
        st.binary(max_size=300).map(lambda data: data.replace(b"\n", b" ").replace(b"\r", b" ")),
        st.just(b"\x00" * 10),
        st.just(b"\xff\xfe{not utf-8}\xc3\x28"),
        st.builds(lambda n: ("[" * n + "]" * n).encode(), st.integers(1, 2000)),
        st.just(b'[{"event_id": "a"}]'),
        st.just(b'"just a string"'),
        st.just(b"12345"),
        st.just(b"{'event_id': 'single quotes'}"),
        st.just(b"Infinity"),
    ),
)
EVENT_SHAPED = st.one_of(
    shaped(
        "any",
        st.builds(
            lambda n, ts: {
                **valid_event(ts, "x"),
                "properties": {"deep": json.loads("[" * n + "]" * n)},
            },
            st.integers(50, 120),
            SEPTEMBER,
        ),
    ),
    shaped(
        "any",
        st.builds(
            lambda value, ts: {
                **valid_event(ts, "x"),
                "event_type": "storage",
                "properties": {"gb": value},
            },
            ODD_VALUES | st.floats(allow_nan=False, allow_infinity=False).map(str),
            SEPTEMBER,
        ),
    ),
    shaped("any", st.builds(lambda ts: valid_event(ts, "x"), ODD_TIMESTAMPS)),
    shaped(
        "any",
        st.builds(
            lambda text, ts: {**valid_event(ts, "x"), "customer_id": text, "event_type": text},
            ONE_LINE,
            SEPTEMBER,
        ),
    ),
    raw(
        "any",
        st.builds(
            lambda ts: (
                '{"event_id": "dup", "event_id": "dup2", "customer_id": "c1", '
                f'"event_type": "api_call", "timestamp": "{ts}"}}'
            ).encode(),
            SEPTEMBER,
        ),
    ),
    raw(
        "any",
        st.builds(
            lambda size: ('{"event_id": "' + "h" * size + '"}').encode(), st.integers(1, 300_000)
        ),
    ),
)


# Valid events twice as likely as each kind of junk, so every run has plenty of both.
LINES = st.lists(st.one_of(VALID, VALID, NOT_OBJECTS, EVENT_SHAPED), min_size=1, max_size=10)
NAMES = st.text(
    alphabet=st.sampled_from("abcXYZ09-_ '\"();,%&$é漢"), min_size=1, max_size=24
).filter(lambda name: name.strip(" ") == name and not name.startswith("-"))


@dataclass(frozen=True)
class FileExample:
    name: str
    lines: tuple
    bom: bool
    crlf: bool


FILES = st.builds(FileExample, NAMES, LINES.map(tuple), st.booleans(), st.booleans())


def collect_examples() -> list[FileExample]:
    """EXAMPLES generated files, the same ones on every run (derandomized, no database)."""
    examples: list[FileExample] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(FILES)
    def collect(example: FileExample) -> None:
        examples.append(example)

    collect()
    # Hypothesis keeps examples small; the sizes a producer can really send, once each.
    examples.append(
        FileExample(
            "huge and deep",
            (
                ("any", b'{"event_id": "' + b"h" * 2_000_000 + b'"}'),
                ("not_accepted", b"[" * 100_000 + b"]" * 100_000),
                ("not_accepted", b"x" * 1_000_000),
            ),
            bom=True,
            crlf=True,
        )
    )
    return examples


def write_files(folder, examples: list[FileExample]) -> tuple[dict[str, list[Line]], list]:
    """Each example as a file with a unique name; valid events get unique ids here.

    Returns the files with new content, and the names of files whose content an earlier
    file already had (Hypothesis repeats small examples): those must land nothing.
    """
    folder.mkdir(parents=True, exist_ok=True)
    written: dict[str, list[Line]] = {}
    copies: list[str] = []
    hashes: set[str] = set()
    serial = 0
    for index, example in enumerate(examples):
        name = f"{index:03d} {example.name}.jsonl"
        lines = []
        for expect, body in example.lines:
            if isinstance(body, dict):
                serial += 1
                prefix = "fz" if expect == "accepted" else "jk"  # valid ones apart
                event = {"event_id": f"{prefix}-{serial}' \"{serial}", **body}
                body = json.dumps(event, ensure_ascii=serial % 2 == 0).encode()
            lines.append(Line(body, expect))
        end = b"\r\n" if example.crlf else b"\n"
        content = (b"\xef\xbb\xbf" if example.bom else b"") + end.join(x.raw for x in lines) + end
        (folder / name).write_bytes(content)
        if file_hash(content) in hashes:
            copies.append(name)
        else:
            hashes.add(file_hash(content))
            written[name] = lines
    return written, copies


@pytest.fixture(scope="module")
def fuzzed(workspace):
    write_seeds(workspace.seeds_dir, seeds())
    written, copies = write_files(workspace.landing_dir, collect_examples())
    result = ingest_files(workspace.warehouse, [workspace.landing_dir], workspace.landing_dir)
    build(workspace, AS_OF, verbose=False)
    return {
        "written": written,
        "copies": copies,
        "result": result,
        "warehouse": workspace.warehouse,
    }


def test_every_file_lands_whole_and_a_copy_of_one_lands_nothing(fuzzed):
    assert fuzzed["result"].rejected_files == []
    assert len(fuzzed["written"]) + len(fuzzed["copies"]) == EXAMPLES + 1
    landed = dict(
        query(fuzzed["warehouse"], "select file_name, raw_row_count from raw.landed_files")
    )
    assert landed == {name: len(lines) for name, lines in fuzzed["written"].items()}


def test_every_raw_line_is_routed_exactly_once(fuzzed):
    routed = Counter(
        dict(
            query(
                fuzzed["warehouse"],
                "select file_name || ':' || line_number, count(*) "
                "from staging.stg_events__routed_events group by all",
            )
        )
    )
    expected = {
        f"{name}:{number}": 1
        for name, lines in fuzzed["written"].items()
        for number in range(1, len(lines) + 1)
    }
    assert dict(routed) == expected


def test_every_valid_line_is_accepted_and_nothing_that_is_not_an_object_is(fuzzed):
    status = dict(
        query(
            fuzzed["warehouse"],
            "select file_name || ':' || line_number, event_status "
            "from staging.stg_events__routed_events",
        )
    )
    expected = {
        f"{name}:{number}": line.expect
        for name, lines in fuzzed["written"].items()
        for number, line in enumerate(lines, start=1)
    }
    kinds = Counter(expected.values())
    assert kinds["accepted"] > 20 and kinds["not_accepted"] > 20 and kinds["any"] > 20
    wrong = {
        key: (expect, status[key])
        for key, expect in expected.items()
        if (expect == "accepted") != (status[key] == "accepted") and expect != "any"
    }
    assert wrong == {}


def test_every_quarantined_line_has_a_reason(fuzzed):
    quarantined, without_reason = query(
        fuzzed["warehouse"],
        "select count(*), count(*) filter (where quarantine_reason is null) "
        "from staging.stg_events__routed_events where event_status = 'quarantined'",
    )[0]
    assert quarantined >= 160 and without_reason == 0  # the 162 lines that are no object


def test_every_valid_event_reaches_usage_exactly_once(fuzzed):
    ids = Counter(
        dict(
            query(
                fuzzed["warehouse"],
                "select event_id, count(*) from staging.stg_events__usage_events "
                "where starts_with(event_id, 'fz-') group by all",
            )
        )
    )
    valid = sum(line.expect == "accepted" for lines in fuzzed["written"].values() for line in lines)
    assert len(ids) == valid and set(ids.values()) == {1}
