"""Billing calendar arithmetic shared by the generator, partitions, gates and orchestration."""

from __future__ import annotations

from datetime import date


def add_months(day: date, months: int) -> date:
    """The first day of the month `months` after `day`'s month (negative goes back)."""
    month_index = day.year * 12 + day.month - 1 + months
    return date(month_index // 12, month_index % 12 + 1, 1)
