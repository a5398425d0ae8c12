"""When a published post's figures are fetched: a decaying schedule counted from its
publishing (by default 1 hour, 6 hours, 1 day, 3 days, 7 days and 30 days after)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta

DEFAULT = (
    timedelta(hours=1),
    timedelta(hours=6),
    timedelta(days=1),
    timedelta(days=3),
    timedelta(days=7),
    timedelta(days=30),
)
ACCOUNT_EVERY = timedelta(days=1)
"""How often an active account's own figures (followers and the like) are fetched."""

_STEP = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse(text: str) -> tuple[timedelta, ...]:
    """`"1h,6h,24h,3d,7d,30d"` as steps after publishing; each a whole number of minutes
    (`m`), hours (`h`) or days (`d`), strictly increasing."""
    steps: list[timedelta] = []
    for part in text.split(","):
        found = _STEP.match(part)
        if found is None:
            raise ValueError(f"{part.strip()!r} is not a step such as 90m, 6h or 3d")
        step = timedelta(**{_UNITS[found[2]]: int(found[1])})
        if step <= timedelta(0) or (steps and step <= steps[-1]):
            raise ValueError("the steps must be positive and each later than the one before")
        steps.append(step)
    return tuple(steps)


def next_step(
    since: datetime, steps: Sequence[timedelta], now: datetime
) -> tuple[int, datetime | None]:
    """The first step still ahead at `now` (how many are behind, and when it is due), or
    `(len(steps), None)` once they all are: a fetch late by more than a step stands for
    every step it passed, so nothing is fetched before it is due."""
    for stage, step in enumerate(steps):
        if since + step > now:
            return stage, since + step
    return len(steps), None
