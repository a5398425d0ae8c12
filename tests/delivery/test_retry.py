"""The retry policy, as a pure function: attempts left, backoff with jitter, Retry-After,
permanent codes."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crier.delivery import MAX_ATTEMPTS
from crier.delivery.retry import RETRY_POLICY, GiveUp, Retry, RetryPolicy
from crier.platforms.errors import RETRYABLE, ErrorCode, PlatformError

NOW = datetime(2027, 3, 14, 1, 59, 59, tzinfo=UTC)


def pinned(value: float) -> RetryPolicy:
    """The policy with its jitter source fixed at `value` in [0, 1)."""
    return RetryPolicy(random=lambda: value)


def test_the_backoff_doubles_from_two_seconds() -> None:
    middle = pinned(0.5)  # no spread
    assert [middle.backoff(n).total_seconds() for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]


@pytest.mark.parametrize(("value", "seconds"), [(0.0, 3.2), (0.999999, 4.8), (0.25, 3.6)])
def test_jitter_spreads_each_wait_by_up_to_a_fifth_either_way(value: float, seconds: float) -> None:
    assert pinned(value).backoff(2).total_seconds() == pytest.approx(seconds, abs=1e-4)


def test_the_real_jitter_stays_within_its_bounds() -> None:
    waits = {RETRY_POLICY.backoff(1).total_seconds() for _ in range(200)}
    assert min(waits) >= 1.6
    assert max(waits) <= 2.4
    assert len(waits) > 1  # it does spread


def test_retry_after_is_a_floor_not_an_addition() -> None:
    policy = pinned(0.5)
    assert policy.backoff(1, retry_after=30).total_seconds() == 30
    assert policy.backoff(3, retry_after=1).total_seconds() == 8


@pytest.mark.parametrize("code", sorted(RETRYABLE))
def test_a_retryable_failure_with_attempts_left_is_retried_after_its_backoff(
    code: ErrorCode,
) -> None:
    decision = pinned(0.5).after(PlatformError(code, "x"), 1, MAX_ATTEMPTS, NOW)
    assert decision == Retry(NOW + timedelta(seconds=2))


def test_a_rate_limit_is_retried_no_sooner_than_retry_after() -> None:
    error = PlatformError(ErrorCode.RATE_LIMITED, "slow down", status=429, retry_after=90)
    assert pinned(0.5).after(error, 1, 3, NOW) == Retry(NOW + timedelta(seconds=90))


@pytest.mark.parametrize("code", sorted(set(ErrorCode) - RETRYABLE))
def test_a_permanent_failure_is_final_at_once(code: ErrorCode) -> None:
    assert pinned(0.5).after(PlatformError(code, "no"), 1, MAX_ATTEMPTS, NOW) == GiveUp("permanent")


def test_the_last_attempt_is_final_even_when_retryable() -> None:
    error = PlatformError(ErrorCode.TIMEOUT, "no answer")
    policy = pinned(0.5)
    assert isinstance(policy.after(error, MAX_ATTEMPTS - 1, MAX_ATTEMPTS, NOW), Retry)
    assert policy.after(error, MAX_ATTEMPTS, MAX_ATTEMPTS, NOW) == GiveUp("exhausted")
    # A retried post allows as many attempts again.
    assert isinstance(policy.after(error, MAX_ATTEMPTS, 2 * MAX_ATTEMPTS, NOW), Retry)


def test_the_permanent_codes_are_the_ones_the_docs_say_are_not_retried() -> None:
    table = (Path(__file__).parents[2] / "docs" / "errors.md").read_text()
    documented = {
        ErrorCode(code): retried
        for code, retried in re.findall(r"^\| `([a-z_]+)` \| (yes|no) \|", table, re.MULTILINE)
    }
    assert set(documented) == set(ErrorCode)
    assert {c for c, retried in documented.items() if retried == "no"} == set(ErrorCode) - RETRYABLE
