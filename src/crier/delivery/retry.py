"""What happens after a delivery attempt fails: the retry policy, as a pure function.

A failure is retried when its code is retryable (rate limited, platform unavailable, a
timeout, an interrupted send: `crier.platforms.errors.RETRYABLE`) and the delivery has
attempts left (3 in all, `crier.delivery.MAX_ATTEMPTS`). The next attempt waits an
exponential backoff (2 s, 4 s, 8 s ...) with jitter of plus or minus 20%, and never less
than the platform's `Retry-After`. Every other failure (validation, revoked access) is
final at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crier.platforms.errors import PlatformError

_jitter = random.Random()  # noqa: S311 - jitter, not security


@dataclass(frozen=True)
class Retry:
    """Try again at `at`."""

    at: datetime


@dataclass(frozen=True)
class GiveUp:
    """The failure is final: the delivery has failed."""

    reason: str
    """`permanent` (the code is not retryable) or `exhausted` (no attempts left)."""


@dataclass(frozen=True)
class RetryPolicy:
    base: timedelta = timedelta(seconds=2)
    """The wait after the first failed attempt; it doubles with each attempt after."""
    jitter: float = 0.2
    """Each wait is spread by up to this fraction either way, so retries do not bunch."""
    random: Callable[[], float] = field(default=_jitter.random, compare=False)
    """A source of numbers in [0, 1) (injected by tests to pin the jitter)."""

    def backoff(self, attempt: int, retry_after: float | None = None) -> timedelta:
        """The wait after failed attempt number `attempt` (1 for the first), never shorter
        than `retry_after` seconds."""
        seconds = self.base.total_seconds() * 2.0 ** (attempt - 1)
        spread = 1.0 - self.jitter + 2.0 * self.jitter * self.random()
        return max(timedelta(seconds=seconds * spread), timedelta(seconds=retry_after or 0))

    def after(
        self, error: PlatformError, attempts_made: int, attempts_allowed: int, now: datetime
    ) -> Retry | GiveUp:
        """What follows the failure `error` of attempt number `attempts_made`, at `now`."""
        if not error.retryable:
            return GiveUp("permanent")
        if attempts_made >= attempts_allowed:
            return GiveUp("exhausted")
        return Retry(now + self.backoff(attempts_made, error.retry_after))


RETRY_POLICY = RetryPolicy()
"""The policy workers use."""
