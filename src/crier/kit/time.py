"""Time: an injectable clock and IANA timezone validation."""

from __future__ import annotations

import zoneinfo
from datetime import UTC, datetime
from functools import cache
from typing import Protocol


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
