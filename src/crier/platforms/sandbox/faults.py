"""Faults the sandbox can be told to inject, through its control API.

Counters (`fail_next`, `rate_limit_next` ...) make tests deterministic: "the next two calls
fail". Rates (`error_rate`) suit load tests; they draw from a seeded generator.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field


class Faults(BaseModel):
    """The sandbox's behaviour; every field is optional when set, and 0 means 'never'."""

    model_config = ConfigDict(extra="forbid")

    latency_ms: int = Field(default=0, ge=0, le=60_000, description="Added to every call.")
    error_rate: float = Field(default=0.0, ge=0, le=1, description="Share of calls answered 503.")
    fail_next: int = Field(default=0, ge=0, description="The next N calls answer 503.")
    rate_limit_next: int = Field(default=0, ge=0, description="The next N calls answer 429.")
    retry_after_seconds: int = Field(
        default=1, ge=0, le=3600, description="`Retry-After` of those 429s."
    )
    hang_next: int = Field(
        default=0, ge=0, description="The next N calls hang (until the client gives up)."
    )
    hang_after_accept_next: int = Field(
        default=0,
        ge=0,
        description="The next N post creations (or replies to reviews) store what they were "
        "sent, then hang: the client cannot know it was accepted.",
    )
    hang_seconds: float = Field(
        default=120.0, gt=0, le=600, description="How long a hanging call waits before answering."
    )
    reject_next: int = Field(
        default=0,
        ge=0,
        description="The next N post creations (or replies) answer 422 content_rejected.",
    )
    reject_text: str | None = Field(
        default=None, description="Posts (or replies) containing this text are rejected."
    )
    token_ttl_seconds: int = Field(
        default=7200, ge=1, description="Lifetime of access tokens issued from now on."
    )


@dataclass
class Outcome:
    """What to do with one call, decided before it is handled."""

    hang: bool = False
    status: int | None = None  # an error status to answer instead of handling the call
    retry_after: int | None = None


class FaultState:
    """The current faults and their counters."""

    def __init__(self, seed: int | None = None) -> None:
        self.faults = Faults()
        self._random = random.Random(seed)  # noqa: S311 - fault injection, not security

    def set(self, faults: Faults) -> None:
        self.faults = faults

    def reset(self) -> None:
        self.faults = Faults()

    def decide(self) -> Outcome:
        """The fate of the next platform call (counters count down as they are used)."""
        f = self.faults
        if f.hang_next:
            f.hang_next -= 1
            return Outcome(hang=True)
        if f.rate_limit_next:
            f.rate_limit_next -= 1
            return Outcome(status=429, retry_after=f.retry_after_seconds)
        if f.fail_next:
            f.fail_next -= 1
            return Outcome(status=503)
        if f.error_rate and self._random.random() < f.error_rate:
            return Outcome(status=503)
        return Outcome()

    def reject(self, text: str) -> bool:
        """Whether this post's content is to be refused."""
        f = self.faults
        if f.reject_next:
            f.reject_next -= 1
            return True
        return bool(f.reject_text) and f.reject_text in text  # type: ignore[operator]

    def hang_after_accept(self) -> bool:
        f = self.faults
        if f.hang_after_accept_next:
            f.hang_after_accept_next -= 1
            return True
        return False
