"""Great Expectations gates over the warehouse, for one UTC day or one billing period
(architecture §7).

Suites are built in code and run through GX's pandas route (STACK.md: GX's SQL data source
cannot read DuckDB): each suite reads its dbt check model (models/checks/, views that say
what is checked) for the window from the warehouse into a DataFrame, then one validation
runs every expectation of the suite against it. Money identities are computed exactly in
SQL (a difference that must be zero), so the DataFrame's floats only ever compare a zero
with a zero.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import yaml

from billing.rules.calendar import Window, add_months
from billing.settings import PROJECT_DIR, quiet_environment
from billing.warehouse import lock


def dbt_project_var(name: str):
    """A dbt var as dbt_project.yml sets it, so a gate checks the rule dbt enforced and a
    threshold is written once (builds pass no --vars, D52)."""
    return yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text(encoding="utf-8"))["vars"][
        name
    ]


# An accepted event may lie this far past the moment its file was loaded (the check model
# computes it; the number is read here only for the rule's description).
FUTURE_TOLERANCE_MINUTES = int(dbt_project_var("future_tolerance_minutes"))
# Share of a landed file's lines that may be quarantined before the staged-events gate fails
# the file's quarantined lines (on files of at least `quarantine_share_min_rows` lines, which
# chk_staged_events applies).
MAX_QUARANTINE_SHARE = float(dbt_project_var("max_quarantine_share"))
# How many failing rows a report lists per expectation; the count is always complete.
LISTED_ROWS = 20
# The staged-events gate reads this many rows at a time (D62): about 0.6 GB of DataFrame.
STAGED_CHUNK_ROWS = 500_000


class QualityError(Exception):
    """The gates could not run at all (no warehouse, no build yet); one line for the CLI."""


class NoEventsError(QualityError):
    """The warehouse is built but holds no events: there is no day or period to check."""


@dataclass(frozen=True)
class SuiteSpec:
    """One suite: the check model it reads (models/checks/), the date column that places a
    row in a window, the order rows are read in, the ids to report, the rules.

    `detail_columns` are listed with a failing row only when the row has a value (a
    quarantined line's reason); `explainers` turn the scope's rows into notes for a failed
    rule on the named column, where the failing rows alone do not say what went wrong (an
    explainer sees only the rows where its column has a value). With `chunk_rows` the
    suite reads its rows that many at a time and adds the results up: an event-grain suite
    then holds one chunk in memory, not every row of a month (D62).
    """

    name: str
    applies_to: str  # "day" (daily data), "period" (billing periods) or "candidates"
    model: str
    date_column: str
    order_by: tuple[str, ...]
    id_columns: tuple[str, ...]
    expectations: Callable[[], list]
    severity: str = "error"
    looked_for: str = "rows"
    detail_columns: tuple[str, ...] = ()
    explainers: dict[str, Callable[[pd.DataFrame], list[str]]] = field(default_factory=dict)
    chunk_rows: int | None = None


@dataclass
class ExpectationFailure:
    """One failed expectation: what it checked, how many rows failed, and which.

    `what` says in words what broke (the expectation's description), for people who do not
    read expectation names; `notes` explain the failure where its rows alone cannot (the
    quarantine share of a file and why its lines were quarantined).
    """

    expectation: str
    unexpected_count: int | None
    element_count: int | None
    rows: list[dict] = field(default_factory=list)
    observed: object = None
    what: str | None = None
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """What broke, in words, with how many rows: the line an alert's summary is made of."""
        what = self.what or self.expectation
        if self.unexpected_count is None:
            return f"{what} (observed {self.observed})"
        counted = f"{what} ({self.unexpected_count:,} of {self.element_count:,} rows)"
        return counted + "".join(f"; {note}" for note in self.notes)

    def describe(self) -> str:
        if self.unexpected_count is None:
            return f"{self.expectation}: observed {self.observed}"
        listed = "; ".join(
            ", ".join(f"{key}={value}" for key, value in row.items()) for row in self.rows
        )
        more = " ..." if self.unexpected_count > len(self.rows) else ""
        return f"{self.expectation}: {self.unexpected_count:,} of {self.element_count:,} rows" + (
            f" [{listed}{more}]" if listed else ""
        )


@dataclass
class SuiteResult:
    """The outcome of one suite over one scope.

    `failures` block (the gate fails); `warnings` are raised as alerts but do not block.
    A suite that found no rows in its scope passes vacuously: it is reported as NO DATA
    with what it looked for, never as PASS.
    """

    suite: str
    scope: Window
    severity: str
    row_count: int
    expectation_count: int
    failures: list[ExpectationFailure]
    warnings: list[ExpectationFailure] = field(default_factory=list)
    looked_for: str = "rows"
    narrowed_to: str = ""  # which rows of the scope were read, when not all of them

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def label(self) -> str:
        return f"{self.scope.label}, {self.narrowed_to}" if self.narrowed_to else self.scope.label

    @property
    def found_data(self) -> bool:
        return self.row_count > 0

    def customers(self, failures: list[ExpectationFailure] | None = None) -> list[str]:
        return sorted(
            {
                str(row["customer_id"])
                for failure in (self.failures if failures is None else failures)
                for row in failure.rows
                if row.get("customer_id") is not None
            }
        )

    def affected_rows(self, failures: list[ExpectationFailure] | None = None) -> int:
        return sum(
            failure.unexpected_count or 0
            for failure in (self.failures if failures is None else failures)
        )

    def status(self) -> str:
        if self.failures:
            return "FAIL"
        return "PASS" if self.found_data else "NO DATA"

    def describe(self) -> str:
        if not self.found_data and self.passed:
            return f"NO DATA {self.suite} {self.label}: no {self.looked_for} to check"
        warned = len(self.warnings)
        head = (
            f"{self.status()} {self.suite} {self.label} "
            f"({self.expectation_count} expectation{'s' * (self.expectation_count != 1)}, "
            f"{self.row_count:,} rows"
            + (f", {warned} warning{'s' * (warned != 1)}" if warned else "")
            + ")"
        )
        lines = [head]
        for prefix, listed in (("", self.failures), ("warning: ", self.warnings)):
            for failure in listed:
                lines.append(f"    {prefix}{failure.describe()}")
                lines += [f"        {note}" for note in failure.notes]
        return "\n".join(lines)


@dataclass
class QualityReport:
    """Every suite run for a request, plus the anomalies found in its scope and the usage
    thresholds reached by the drafts of its periods.

    `passed` says no gate failed; `found_data` says anything was checked at all. A scope
    with no rows passes every suite, so callers that must not mistake "nothing there" for
    "all good" (the CLI, a scheduled check) read `found_data` or `checked_rows`.
    """

    results: list[SuiteResult]
    anomalies: pd.DataFrame | None  # None when the run did not look for anomalies
    reconciliation: dict = field(default_factory=dict)
    thresholds: pd.DataFrame | None = None  # None when the run did not look for them

    @property
    def passed(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def checked_rows(self) -> int:
        return sum(result.row_count for result in self.results)

    @property
    def found_data(self) -> bool:
        return self.checked_rows > 0

    @property
    def empty_suites(self) -> list[str]:
        return [result.suite for result in self.results if not result.found_data]

    @property
    def warning_count(self) -> int:
        return sum(len(result.warnings) for result in self.results)

    @property
    def anomaly_count(self) -> int:
        return 0 if self.anomalies is None else len(self.anomalies)

    def describe(self) -> str:
        lines = []
        if self.reconciliation:
            totals = self.reconciliation
            lines += [
                "reconciliation (day x customer x event type rows): "
                f"{totals['ok']:,} ok, {totals['warn']:,} warn, {totals['fail']:,} fail",
                f"    received {totals['received']:,} = accepted {totals['accepted']:,} + "
                f"duplicate {totals['duplicate']:,} + quarantined {totals['quarantined']:,}; "
                f"producer-reported {totals['producer_reported']:,}; "
                f"billed {totals['billed']:,}",
                f"    period tie-out (customer x period x meter): {totals['tie_out_ok']:,} ok, "
                f"{totals['tie_out_fail']:,} fail",
            ]
        lines += [result.describe() for result in self.results]
        if self.thresholds is not None and len(self.thresholds):
            # Listed when reached only: most runs reach none, and a period with no drafts
            # has nothing to say about them.
            lines.append(f"usage thresholds reached by drafts: {len(self.thresholds)}")
            lines += [f"    {threshold_reached(row)}" for row in self.thresholds.itertuples()]
        if self.anomalies is None:
            return "\n".join(lines)
        if len(self.anomalies):
            lines.append(f"usage anomalies: {len(self.anomalies)}")
            lines += [
                f"    {clean_value(row.usage_date)} {row.customer_id} {row.meter_id}: "
                + anomaly_statistics(row)
                for row in self.anomalies.itertuples()
            ]
        else:
            lines.append("usage anomalies: none")
        return "\n".join(lines)


def threshold_reached(row) -> str:
    """`g1 reached spend threshold t1 in 2026-10: 19.00 USD >= 19.00 USD`: what the alert
    says. The values come as text (exact decimals, never floats, D78)."""
    period = str(clean_value(row.billing_period_start))[:7]
    return (
        f"{row.customer_id} reached {row.threshold_kind} threshold {row.threshold_id}"
        + (f" ({row.meter_id})" if isinstance(row.meter_id, str) else "")
        + f" in {period}: {threshold_amount(row, row.observed_value)} >= "
        f"{threshold_amount(row, row.threshold)}"
    )


def threshold_amount(row, text: str) -> str:
    """A value of a threshold's row in its unit: money at its currency's places, a quantity
    in the meter's unit."""
    places = None if pd.isna(row.currency_minor_units) else int(row.currency_minor_units)
    unit = f" {row.threshold_unit}" if isinstance(row.threshold_unit, str) else ""
    return plain_decimal(text, places) + unit


def plain_decimal(text: str, places: int | None) -> str:
    """An exact decimal as people write it: money at its currency's places (19.00 USD,
    1150 JPY), a quantity without trailing zeros (2500, 12.4)."""
    value = Decimal(text)
    if places is not None:
        return format(value.quantize(Decimal(1).scaleb(-places)), "f")
    return format(value.normalize(), "f")


def anomaly_statistics(row) -> str:
    """`observed vs trailing mean (ratio, robust score)` for one flagged day.

    When every trailing day was the same there is no spread, so no robust score (the model
    leaves it null and flags any rise); printing it would read "robust score nan", which
    looks like a bug, so the text says what happened instead.
    """
    score = row.robust_score
    spread = (
        "no spread: every trailing day was the same"
        if score is None or pd.isna(score)
        else f"robust score {score:.1f}"
    )
    return (
        f"{float(row.observed_quantity):,.0f} vs trailing mean {float(row.baseline_mean):,.1f} "
        f"({row.ratio_to_mean:.1f}x, {spread})"
    )


def _staged_events_expectations() -> list:
    import great_expectations.expectations as gxe
    from great_expectations.expectations.row_conditions import Column

    accepted = {"row_condition": Column("event_status") == "accepted"}
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="event_id", description="accepted events without an event id", **accepted
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id", description="accepted events without a customer", **accepted
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="accepted_copies",
            max_value=1,
            description="an event id accepted more than once",
            **accepted,
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="event_at", description="accepted events without a timestamp", **accepted
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="counted_offset_days",
            min_value=0,
            description="accepted events dated before the day they are counted on",
            **accepted,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="minutes_after_load",
            max_value=0,
            description=f"accepted events dated more than {FUTURE_TOLERANCE_MINUTES} minutes "
            "after their file was loaded",
            **accepted,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="file_quarantine_share",
            max_value=MAX_QUARANTINE_SHARE,
            description="quarantined lines in a landed file over the "
            f"{MAX_QUARANTINE_SHARE:.0%} quarantine limit",
        ),
    ]


def _daily_usage_expectations() -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="customer_id", description="usage rows without a customer"
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="meter_id", description="usage rows without a meter"
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="quantity", description="usage rows without a quantity"
        ),
        # architecture §6.3: event values may be negative (a producer's own correction), and a
        # period that ends negative is billed as 0 and reported. A negative day is that
        # report, early: an alert to look at, never a reason to stop the daily job.
        gxe.ExpectColumnValuesToBeBetween(
            column="quantity",
            min_value=0,
            severity="warning",
            description="negative net usage on a day (corrections larger than the usage; "
            "a period that ends negative is billed as 0)",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="event_count", min_value=1, description="usage rows with no events behind them"
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["usage_date", "customer_id", "meter_id", "dimension_key"],
            description="usage counted twice for one customer, day, meter and dimension",
        ),
    ]


def _reconciliation_expectations() -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToNotBeInSet(
            column="status",
            value_set=["fail"],
            description="received, producer-reported and billed counts that do not reconcile",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="routing_delta",
            min_value=0,
            max_value=0,
            description="raw rows not routed exactly once (accepted, duplicate or quarantined)",
        ),
    ]


def _invoice_expectations() -> list:
    import great_expectations.expectations as gxe

    exactly_zero = {"min_value": 0, "max_value": 0}
    return [
        gxe.ExpectColumnValuesToNotBeNull(
            column="invoice_id", description="an active customer and period without an invoice"
        ),
        gxe.ExpectCompoundColumnsToBeUnique(
            column_list=["customer_id", "billing_period_start"],
            description="more than one invoice for a customer and period",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="has_active_subscription",
            value_set=[True],
            description="invoices without an active subscription",
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="subtotal_difference",
            description="a subtotal that is not the sum of its lines",
            **exactly_zero,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="total_difference",
            description="a total that is not subtotal - discount + tax - credits",
            **exactly_zero,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="line_count_difference",
            description="a line count that does not match the invoice's lines",
            **exactly_zero,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="rounding_remainder",
            description="amounts below the currency's minor unit",
            **exactly_zero,
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="total_amount", min_value=0, description="a negative invoice total"
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="tax_amount", min_value=0, description="a negative tax amount"
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="discount_amount", min_value=0, description="a negative discount"
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="credits_applied_amount", min_value=0, description="negative credits applied"
        ),
        gxe.ExpectColumnPairValuesToBeEqual(
            column_A="currency",
            column_B="customer_currency",
            ignore_row_if="either_value_is_missing",
            description="invoices in another currency than their customer's",
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="status",
            value_set=["draft", "finalized"],
            description="an invoice status other than draft or finalized",
        ),
    ]


def _tie_out_expectations() -> list:
    import great_expectations.expectations as gxe

    return [
        gxe.ExpectColumnValuesToBeBetween(
            column="unexplained_quantity",
            min_value=0,
            max_value=0,
            description="invoiced usage that differs from the events by more than unpriced, "
            "late and reversed usage explain",
        ),
    ]


def window_sql(model: str, date_column: str, order_by: tuple[str, ...] = (), also: str = "") -> str:
    """The rows of a check model (models/checks/, one dbt definition of what a gate reads)
    whose `date_column` lies in a window (two parameters: start, end exclusive), and that
    meet the condition `also` when one is given."""
    order = f" order by {', '.join(order_by)}" if order_by else ""
    condition = f" and {also}" if also else ""
    return (
        f"select * from checks.{model} "
        f"where {date_column} >= $1 and {date_column} < $2{condition}{order}"
    )


# The whole scope's reconciliation counts and tie-out statuses, for `billing quality`.
RECONCILIATION_TOTALS_SQL = """
select
    count(*) filter (where status = 'ok') as ok,
    count(*) filter (where status = 'warn') as warn,
    count(*) filter (where status = 'fail') as fail,
    coalesce(sum(received_count), 0) as received,
    coalesce(sum(accepted_count), 0) as accepted,
    coalesce(sum(duplicate_count), 0) as duplicate,
    coalesce(sum(quarantined_count), 0) as quarantined,
    coalesce(sum(producer_reported_count), 0) as producer_reported,
    coalesce(sum(billed_count), 0) as billed,
    (select count(*) from checks.chk_usage_tie_out
        where status = 'ok' and billing_period_start >= $1 and billing_period_start < $2)
        as tie_out_ok,
    (select count(*) from checks.chk_usage_tie_out
        where status = 'fail' and billing_period_start >= $1 and billing_period_start < $2)
        as tie_out_fail
from checks.chk_reconciliation_daily
where reconciliation_date >= $1 and reconciliation_date < $2
"""

ANOMALIES_SQL = window_sql(
    "chk_usage_anomalies", "usage_date", ("usage_date", "customer_id", "meter_id")
)

# The thresholds reached by the drafts of every period the window touches: a day's run
# sees its open month (D78).
THRESHOLDS_SQL = """
select
    * exclude (threshold, observed_value),
    cast(threshold as varchar) as threshold,
    cast(observed_value as varchar) as observed_value
from checks.chk_threshold_crossings
where billing_period_start < $2 and billing_period_end > $1
order by billing_period_start, customer_id, threshold_id
"""


def quarantined_files(frame: pd.DataFrame) -> list[str]:
    """One note per landed file over the quarantine share: how many of its lines were
    quarantined, the share, and why.

    The rule fails each quarantined line of such a file; a list of lines does not say
    whether the file was 6 % or 100 % bad, nor which producer mistake did it.
    """
    over = frame[frame["file_quarantine_share"] > MAX_QUARANTINE_SHARE]
    notes = []
    for file_name, rows in over.groupby("file_name", sort=True):
        first = rows.iloc[0]
        notes.append(
            f"{file_name}: {int(first.file_quarantined):,} of {int(first.file_rows):,} lines "
            f"quarantined ({float(first.file_quarantine_share):.1%}, more than "
            f"{MAX_QUARANTINE_SHARE:.0%}); reasons: {first.file_quarantine_reasons}"
        )
    return notes


# Candidates: the invoices a monthly run is about to finalize (and the drafts beside them),
# before the ledger; periods already finalized are not candidates, so there is no coverage
# check there (the invoice marts' gate has it).
SUITES = (
    SuiteSpec(
        "staged_events",
        "day",
        "chk_staged_events",
        "reconciliation_date",
        ("reconciliation_date", "file_name", "line_number", "raw_row_id"),
        ("reconciliation_date", "file_name", "line_number", "customer_id"),
        _staged_events_expectations,
        looked_for="staged events",
        detail_columns=("quarantine_reason",),
        explainers={"file_quarantine_share": quarantined_files},
        chunk_rows=STAGED_CHUNK_ROWS,
    ),
    SuiteSpec(
        "daily_usage",
        "day",
        "chk_daily_usage",
        "usage_date",
        ("usage_date", "customer_id", "meter_id", "dimension_key"),
        ("usage_date", "customer_id", "meter_id"),
        _daily_usage_expectations,
        looked_for="daily usage",
    ),
    SuiteSpec(
        "reconciliation",
        "day",
        "chk_reconciliation_daily",
        "reconciliation_date",
        ("reconciliation_date", "customer_id", "event_type"),
        ("reconciliation_date", "customer_id", "event_type", "status_reason"),
        _reconciliation_expectations,
        looked_for="reconciliation rows",
    ),
    SuiteSpec(
        "invoices",
        "period",
        "chk_invoice_identities",
        "billing_period_start",
        ("billing_period_start", "customer_id", "invoice_id"),
        ("invoice_id", "customer_id", "billing_period_start"),
        _invoice_expectations,
        severity="critical",
        looked_for="invoices or active subscriptions",
    ),
    SuiteSpec(
        "invoice_candidates",
        "candidates",
        "chk_invoice_candidate_identities",
        "billing_period_start",
        ("billing_period_start", "customer_id", "invoice_id"),
        ("invoice_id", "customer_id", "billing_period_start"),
        _invoice_expectations,
        severity="critical",
        looked_for="invoice candidates",
    ),
    SuiteSpec(
        "usage_tie_out",
        "period",
        "chk_usage_tie_out",
        "billing_period_start",
        ("billing_period_start", "customer_id", "meter_id"),
        ("customer_id", "meter_id", "billing_period_start"),
        _tie_out_expectations,
        looked_for="period tie-out rows",
    ),
)


def spec_query(spec: SuiteSpec, staged_after_batch: int | None = None) -> tuple[str, tuple]:
    """What a suite reads (its check model's rows in the window, in its order), and the
    parameters after the window's two.

    With `staged_after_batch` the staged-events suite reads only the rows routed in a
    later batch: what a build's gate has not passed yet (D59). Its rules hold row by row
    once `accepted_copies` counts over the whole table, so the rows left out were passed by
    an earlier gate and have not changed since.
    """
    if staged_after_batch is None or spec.name != "staged_events":
        return window_sql(spec.model, spec.date_column, spec.order_by), ()
    sql = window_sql(spec.model, spec.date_column, spec.order_by, also="routed_batch > $3")
    return sql, (staged_after_batch,)


def suites_for(scope: Window, names: tuple[str, ...] | None = None) -> list[SuiteSpec]:
    """Day suites check a day or a range of days; period suites check a period or a range.

    The invoice candidates suite runs only when asked for by name: it gates a monthly run
    before finalization, and after a build its candidates are the open drafts.
    """
    if names is None:
        wanted = [spec for spec in SUITES if spec.applies_to != "candidates"]
    else:
        wanted = [spec for spec in SUITES if spec.name in names]
    if scope.kind == "range":
        return wanted
    kinds = {"day": {"day"}, "period": {"period", "candidates"}}[scope.kind]
    return [spec for spec in wanted if spec.applies_to in kinds]


def expectation_label(config) -> str:
    """`expect_x(column)` with the arguments a reader needs to recognise the rule."""
    kwargs = config.kwargs
    columns = (
        kwargs.get("column")
        or kwargs.get("column_list")
        or [
            kwargs.get("column_A"),
            kwargs.get("column_B"),
        ]
    )
    if isinstance(columns, str):
        columns = [columns]
    bounds = []
    for key in ("min_value", "max_value", "value_set"):
        if kwargs.get(key) is not None:
            bounds.append(f"{key}={kwargs[key]}")
    inside = ", ".join([*(str(c) for c in columns if c), *bounds])
    return f"{config.type}({inside})"


def clean_value(value: object) -> object:
    """Plain Python values for reports, alert payloads and JSON."""
    if isinstance(value, pd.Timestamp) and value == value.normalize():
        return value.date().isoformat()
    if hasattr(value, "item"):
        value = value.item()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def listed_row(row: dict, spec: SuiteSpec) -> dict:
    """A failing row as reported: its ids, and its details when it has them."""
    listed = {column: clean_value(row.get(column)) for column in spec.id_columns if column in row}
    for column in spec.detail_columns:
        if row.get(column) is not None:
            listed[column] = clean_value(row[column])
    return listed


def failure_from_result(result, spec: SuiteSpec) -> ExpectationFailure:
    details = result.result or {}
    rows = details.get("unexpected_index_list") or details.get("partial_unexpected_index_list")
    config = result.expectation_config
    return ExpectationFailure(
        expectation=expectation_label(config),
        unexpected_count=details.get("unexpected_count"),
        element_count=details.get("element_count"),
        rows=[listed_row(row, spec) for row in (rows or [])[:LISTED_ROWS]],
        observed=clean_value(details.get("observed_value")),
        what=config.description,
    )


def added_counts(first: int | None, second: int | None) -> int | None:
    return None if first is None and second is None else (first or 0) + (second or 0)


def merged_failure(earlier: ExpectationFailure | None, later: ExpectationFailure):
    """One expectation's failure over two chunks of a suite's rows, as if read at once:
    the failing counts add up and the first LISTED_ROWS failing rows are listed, in read
    order. The rows checked are counted over every chunk, failed or not, by the caller,
    which sets them on the merged failure."""
    if earlier is None:
        return later
    return ExpectationFailure(
        expectation=earlier.expectation,
        unexpected_count=added_counts(earlier.unexpected_count, later.unexpected_count),
        element_count=earlier.element_count,
        rows=(earlier.rows + later.rows)[:LISTED_ROWS],
        observed=earlier.observed,
        what=earlier.what,
    )


def explained_rows(frame: pd.DataFrame, spec: SuiteSpec) -> dict[str, pd.DataFrame]:
    """The rows each explainer may read: those where its column has a value."""
    return {column: frame[frame[column].notna()] for column in spec.explainers}


def is_warning(result) -> bool:
    """An expectation of severity `warning` alerts without failing its gate."""
    return getattr(result.expectation_config, "severity", None) == "warning"


class GateRunner:
    """One ephemeral GX context with every suite registered, reused across scopes."""

    def __init__(self) -> None:
        quiet_environment()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

        self.gx = gx
        self.context = gx.get_context(mode="ephemeral")
        self.context.variables.progress_bars = ProgressBarsConfig(globally=False)
        source = self.context.data_sources.add_pandas("warehouse")
        self.validations = {}
        for spec in SUITES:
            batch = source.add_dataframe_asset(spec.name).add_batch_definition_whole_dataframe(
                "scope"
            )
            suite = self.context.suites.add(gx.ExpectationSuite(name=spec.name))
            for expectation in spec.expectations():
                suite.add_expectation(expectation)
            self.validations[spec.name] = self.context.validation_definitions.add(
                gx.ValidationDefinition(name=spec.name, data=batch, suite=suite)
            )

    def run(
        self,
        spec: SuiteSpec,
        scope: Window,
        frames: Iterable[pd.DataFrame],
        narrowed_to: str = "",
    ) -> SuiteResult:
        """The suite over its rows, read as one frame or as chunks (`spec.chunk_rows`)."""
        validation = self.validations[spec.name]
        row_count = 0
        expectation_count = 0
        failed: dict[int, tuple[bool, ExpectationFailure, str | None]] = {}
        element_counts: dict[int, int | None] = {}
        explained: dict[str, list[pd.DataFrame]] = {column: [] for column in spec.explainers}
        for frame in frames:
            outcome = validation.run(
                batch_parameters={"dataframe": frame},
                result_format={
                    "result_format": "COMPLETE" if len(frame) <= 10_000 else "SUMMARY",
                    "partial_unexpected_count": LISTED_ROWS,
                    "unexpected_index_column_names": [*spec.id_columns, *spec.detail_columns],
                },
            )
            row_count += len(frame)
            expectation_count = len(outcome.results)
            for position, result in enumerate(outcome.results):
                elements = (result.result or {}).get("element_count")
                element_counts[position] = added_counts(element_counts.get(position), elements)
                if not result.success:
                    earlier = failed.get(position, (False, None, None))[1]
                    failure = merged_failure(earlier, failure_from_result(result, spec))
                    column = result.expectation_config.kwargs.get("column")
                    failed[position] = (is_warning(result), failure, column)
            for column, rows in explained_rows(frame, spec).items():
                explained[column].append(rows)
        for position, (_, failure, column) in failed.items():
            failure.element_count = element_counts[position]
            if column in spec.explainers:
                failure.notes = spec.explainers[column](pd.concat(explained[column]))
        ordered = [failed[position][:2] for position in sorted(failed)]
        return SuiteResult(
            suite=spec.name,
            scope=scope,
            severity=spec.severity,
            row_count=row_count,
            expectation_count=expectation_count,
            failures=[failure for warning, failure in ordered if not warning],
            warnings=[failure for warning, failure in ordered if warning],
            looked_for=spec.looked_for,
            narrowed_to=narrowed_to,
        )


_RUNNER: GateRunner | None = None


def gate_runner() -> GateRunner:
    """GX takes seconds to import and set up; one context serves every run in a process."""
    global _RUNNER
    if _RUNNER is None:
        _RUNNER = GateRunner()
    return _RUNNER


def connect_warehouse(warehouse: Path) -> duckdb.DuckDBPyConnection:
    if not warehouse.exists():
        raise QualityError(f"no warehouse at {warehouse}: run `billing build` first")
    try:
        return lock.connect(warehouse, read_only=True)
    except lock.WarehouseBusy as error:
        raise QualityError(f"nothing checked: {error}") from error
    except duckdb.Error as error:
        raise QualityError(f"cannot open warehouse {warehouse}: {error}") from error


def read_frame(
    con: duckdb.DuckDBPyConnection, sql: str, scope: Window, more: tuple = ()
) -> pd.DataFrame:
    try:
        return con.execute(sql, [scope.start, scope.end, *more]).df()
    except duckdb.CatalogException as error:
        raise QualityError(f"the warehouse has not been built yet: {error}") from error


def read_chunks(
    con: duckdb.DuckDBPyConnection, sql: str, scope: Window, more: tuple, chunk_rows: int
) -> Iterator[pd.DataFrame]:
    """A query's rows as DataFrames of about `chunk_rows` rows, streamed from DuckDB; the
    first chunk always comes, empty or not, so an empty scope still reports its columns."""
    try:
        cursor = con.cursor().execute(sql, [scope.start, scope.end, *more])
    except duckdb.CatalogException as error:
        raise QualityError(f"the warehouse has not been built yet: {error}") from error
    vectors = max(1, chunk_rows // duckdb.__standard_vector_size__)
    chunk = cursor.fetch_df_chunk(vectors)
    yield chunk
    while len(chunk):
        chunk = cursor.fetch_df_chunk(vectors)
        if len(chunk):
            yield chunk


def suite_frames(
    con: duckdb.DuckDBPyConnection, spec: SuiteSpec, query: tuple[str, tuple], scope: Window
) -> Iterable[pd.DataFrame]:
    sql, more = query
    if spec.chunk_rows is None:
        return [read_frame(con, sql, scope, more)]
    return read_chunks(con, sql, scope, more, spec.chunk_rows)


def data_range(warehouse: Path) -> Window:
    """Every month with accepted events or an invoice, as one range scope: what
    `billing quality` checks by default (drafts of the current month included)."""
    with connect_warehouse(warehouse) as con:
        try:
            first, last = con.execute(
                "select min(day), max(day) from ("
                "select reconciliation_date as day from checks.chk_reconciliation_daily "
                "where accepted_count > 0 union all select billing_period_start "
                "from checks.chk_invoice_identities where invoice_id is not null)"
            ).fetchone()
        except duckdb.CatalogException as error:
            raise QualityError("the warehouse has not been built yet") from error
    if first is None:
        raise NoEventsError("the warehouse holds no events yet: run `billing ingest` and build")
    # Every day of those months: a range of days checks the day and the period gates alike.
    return Window("daily", first.replace(day=1), add_months(last.replace(day=1), 1))


def run_quality(
    warehouse: Path,
    scope: Window,
    suites: tuple[str, ...] | None = None,
    staged_after_batch: int | None = None,
) -> QualityReport:
    """Run the suites that apply to `scope` and collect the usage anomalies inside it.

    This is the function orchestration calls; it reads only, so it never changes data.
    `staged_after_batch` narrows the staged-events suite to the rows routed after that
    batch (a build's gate, D59); every other suite reads its whole scope.
    """
    specs = suites_for(scope, suites)
    runner = gate_runner()
    with connect_warehouse(warehouse) as con:
        queries = {spec.name: spec_query(spec, staged_after_batch) for spec in specs}
        anomalies = (
            read_frame(con, ANOMALIES_SQL, scope)
            if scope.kind != "period" and (suites is None or "anomalies" in suites)
            else None
        )
        thresholds = (
            read_frame(con, THRESHOLDS_SQL, scope)
            if suites is None or "thresholds" in suites
            else None
        )
        totals = (
            read_frame(con, RECONCILIATION_TOTALS_SQL, scope).iloc[0]
            if suites is None and scope.kind != "period"
            else {}
        )
        results = [
            runner.run(
                spec,
                scope,
                suite_frames(con, spec, queries[spec.name], scope),
                "rows routed since the last passed gate" if queries[spec.name][1] else "",
            )
            for spec in specs
        ]
    reconciliation = {key: int(value) for key, value in totals.items()}
    return QualityReport(
        results=results,
        anomalies=anomalies,
        reconciliation=reconciliation,
        thresholds=thresholds,
    )
