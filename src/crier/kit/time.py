"""Time: an injectable clock, IANA timezone validation, timestamps that carry an offset."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import cache
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
    return frozenset(zoneinfo.available_timezones())


def is_iana_timezone(name: str) -> bool:
    """Whether `name` is a zone of the IANA database (`Europe/Paris`, `UTC` ...)."""
    return name in _known_zones()


EXPECTED_FORM = "2025-10-21T12:00:00-04:00 (or 2025-10-21T16:00:00Z)"


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
    return parsed


Timestamp = Annotated[
    datetime,
    BeforeValidator(_with_offset),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "example": "2025-10-21T12:00:00-04:00"}
    ),
]
"""A datetime the API accepts only with an explicit offset (`naive-timestamp` otherwise)."""
