"""Dates from filter forms: a day picked in a form as the UTC datetimes a query filters by."""
from datetime import UTC, date, datetime, time


def day_start(day: date) -> datetime:
    """The first instant (UTC) of `day`."""
    return datetime.combine(day, time.min, tzinfo=UTC)


def date_range(*, since: date | None, until: date | None) -> dict:
    """{"since": ..., "until": ...} for the bounds given, each the start (UTC) of its day; an absent bound is left out.
    (`until` is exclusive: the start of the day named.)"""
    return {name: day_start(day) for name, day in (("since", since), ("until", until)) if day}
