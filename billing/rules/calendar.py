"""Billing calendar arithmetic shared by the generator, partitions, gates and orchestration:
months, the run's `as_of`, and the one window type."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after `day`'s month (negative goes back)."""
    month_index = day.year * 12 + day.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, 1)


def normalize_as_of(text: str | None, now: datetime) -> str:
    """A run's `as_of` as RFC 3339 UTC to the second: `text` when given, else `now`.

    The one normaliser for the CLI's `--as-of` and Dagster's `billing/as_of` tag, so both
    read a bare date or a naive time as UTC and record the same string. Raises ValueError
    for text that is no ISO 8601 date or timestamp.
    """
    text = (text or "").strip()
    moment = datetime.fromisoformat(text.replace("z", "Z")) if text else now
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Window:
    """Days or whole billing months, end exclusive: what a run builds and its gates check.

    One type for the CLI's `--day` / `--period`, Dagster's partitions (one or a range) and
    the default "every month with data", so a window means the same thing everywhere.
    """

    grain: str  # "daily" or "monthly"
    start: date
    end: date  # exclusive

    @classmethod
    def day(cls, day: date) -> Window:
        return cls("daily", day, day + timedelta(days=1))

    @classmethod
    def period(cls, month: date) -> Window:
        first = month.replace(day=1)
        return cls("monthly", first, add_months(first, 1))

    @classmethod
    def days(cls, first: date, last: date) -> Window:
        """Days `first` through `last`, inclusive."""
        return cls("daily", first, last + timedelta(days=1))

    @classmethod
    def months(cls, first: date, last: date) -> Window:
        """The months of `first` through `last`, inclusive."""
        return cls("monthly", first.replace(day=1), add_months(last.replace(day=1), 1))

    @property
    def kind(self) -> str:
        """ "day" (one day), "period" (one month) or "range": which gates apply (a range
        checks both the day and the period gates)."""
        if self.grain == "daily" and self.end == self.start + timedelta(days=1):
            return "day"
        if self.grain == "monthly" and self.end == add_months(self.start, 1):
            return "period"
        return "range"

    @property
    def label(self) -> str:
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "period":
            return self.start.strftime("%Y-%m")
        return f"{self.start.isoformat()}..{self.end.isoformat()}"
