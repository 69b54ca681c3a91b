"""Billing calendar arithmetic shared by the generator, partitions, gates and orchestration."""

from __future__ import annotations

from datetime import UTC, date, datetime


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
