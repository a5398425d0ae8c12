"""Time: an injectable clock, IANA timezone validation, timestamps that carry an offset."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from importlib.resources import files
from typing import Annotated, Any, Protocol

from pydantic import BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError


class Clock(Protocol):
    """Where Crier reads the current time; tests inject their own."""

    def now(self) -> datetime: ...


class SystemClock:
    """The real time, in UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


@cache
def _known_zones() -> frozenset[str]:
    # The zone list of the pinned tzdata package, not the host's: a host's files also hold
    # `localtime` (whatever the machine is set to) and `Factory` (a placeholder, not a place).
    listed = files("tzdata").joinpath("zones").read_text(encoding="ascii").split()
    return frozenset(listed) - {"Factory"}


def is_iana_timezone(name: str) -> bool:
    """Whether `name` is a zone of the IANA database (`Europe/Paris`, `UTC` ...)."""
    return name in _known_zones()


TIMEZONE_COMPONENT = "Timezone"


def timezone_schema() -> dict[str, Any]:
    """The OpenAPI component listing every zone `is_iana_timezone` accepts."""
    return {
        "type": "string",
        "enum": sorted(_known_zones()),
        "description": "A zone of the IANA time zone database, such as `Europe/Paris`.",
    }


IanaTimezone = Annotated[
    str, WithJsonSchema({"$ref": f"#/components/schemas/{TIMEZONE_COMPONENT}"})
]
"""A timezone field, described by the `Timezone` component (checked where it is used)."""


EXPECTED_FORM = "2025-10-21T12:00:00-04:00 (or 2025-10-21T16:00:00Z)"

# Instants a day inside what Python can represent, so that any arithmetic Crier does on a
# timestamp (a lock window, a day of retries) stays representable; PostgreSQL's range is wider.
EARLIEST = datetime(1, 1, 2, tzinfo=UTC)
LATEST = datetime(9999, 12, 30, tzinfo=UTC)


def _with_offset(value: Any) -> Any:
    """Accept ISO 8601 timestamps only with an explicit UTC offset."""
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        text = value.strip()
        # A '+' in a query string arrives as a space: 12:00:00 02:00 means 12:00:00+02:00.
        if len(text) > 19 and text[-6] == " ":
            text = text[:-6] + "+" + text[-5:]
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise PydanticCustomError(
                "invalid_timestamp",
                "not an ISO 8601 timestamp; expected the form {expected}",
                {"expected": EXPECTED_FORM},
            ) from None
    else:
        raise PydanticCustomError("invalid_timestamp", "expected an ISO 8601 string")
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise PydanticCustomError(
            "naive_timestamp",
            "timestamp has no UTC offset; send it in the form {expected}",
            {"expected": EXPECTED_FORM},
        )
    try:
        in_utc = parsed.astimezone(UTC)
    except OverflowError:
        in_utc = None
    if in_utc is None or not EARLIEST <= in_utc <= LATEST:
        raise PydanticCustomError(
            "timestamp_out_of_range",
            "timestamp lies outside {earliest} to {latest}",
            {"earliest": EARLIEST.isoformat(), "latest": LATEST.isoformat()},
        )
    return parsed


Timestamp = Annotated[
    datetime,
    BeforeValidator(_with_offset),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2025-10-21T12:00:00-04:00"}
    ),
]
"""A datetime the API accepts only with an explicit offset (`naive-timestamp` otherwise)."""


def _iso_day(value: Any) -> Any:
    """Accept a calendar day only as ISO 8601 `YYYY-MM-DD` (not a number of seconds)."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, str) and len(value) == 10 and value[4] == value[7] == "-":
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("invalid_day", "not a day in the form YYYY-MM-DD")


Day = Annotated[
    date,
    BeforeValidator(_iso_day),
    WithJsonSchema({"type": "string", "format": "date", "example": "2026-11-01"}),
]
"""A calendar day, written `YYYY-MM-DD`."""
