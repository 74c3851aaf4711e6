"""The families keep time in two forms (ISO 8601 text, microseconds since the
epoch); the console speaks in aware UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_micros(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def from_text(value: str | None) -> datetime | None:
    """An ISO 8601 time as written by a family or a caller; None when absent
    or unreadable (callers' text is kept verbatim, so it may be anything)."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def from_db(value: datetime | None) -> datetime | None:
    """A DateTime column's value (SQLite hands it back naive, in UTC)."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def iso_millis(moment: datetime) -> str:
    """The tracer's text form (JavaScript's toISOString), for comparisons."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
