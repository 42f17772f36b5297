"""Dates: Flux keeps timezone-aware UTC datetimes inside; naive datetimes from users mean UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime

from flux.exceptions import InvalidDateError

UTC = UTC


def as_utc(value: datetime | date | None) -> datetime | None:
    """``value`` as an aware UTC datetime (a naive one is taken as UTC; a date as its midnight)."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def utcnow() -> datetime:
    """The current time, aware, in UTC."""
    return datetime.now(UTC)


def parse_date(text: str) -> datetime:
    """Parse a user's ``YYYY-MM-DD`` or ISO 8601 datetime into an aware UTC datetime.

    >>> parse_date("2014-09-01").isoformat()
    '2014-09-01T00:00:00+00:00'
    """
    cleaned = text.strip()
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(cleaned)
    except ValueError as exc:
        raise InvalidDateError(
            f"invalid date {text!r}: expected YYYY-MM-DD or an ISO datetime ({exc})"
        ) from None
    try:
        return as_utc(parsed)  # type: ignore[return-value]
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first representable UTC instant
        raise InvalidDateError(
            f"invalid date {text!r}: out of range once converted to UTC (years 1 to 9999)"
        ) from None


def display(value: datetime) -> str:
    """The seed's way of showing an execution date: ``2014-09-01 00:00:00`` (UTC implied)."""
    return as_utc(value).strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[union-attr]


def path_component(value: datetime) -> str:
    """An execution date as a folder name: ``2014-09-01T00:00:00`` (UTC implied)."""
    return as_utc(value).replace(tzinfo=None).isoformat()  # type: ignore[union-attr]
