"""How a delivery's row changes with each answer: pure changes, checked on unsaved rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from crier.delivery import MAX_ATTEMPTS, outcomes
from crier.delivery.retry import GiveUp, Retry
from crier.models import Delivery, DeliveryAttempt
from crier.platforms.base import Published
from crier.platforms.errors import ErrorCode, PlatformError

NOW = datetime(2027, 11, 7, 6, 30, tzinfo=UTC)


def delivery(**fields: object) -> Delivery:
    row = Delivery(
        workspace_id=uuid4(),
        id=uuid4(),
        status="pending",
        attempts=0,
        attempts_allowed=MAX_ATTEMPTS,
        uncertain=False,
    )
    for name, value in fields.items():
        setattr(row, name, value)
    return row


def test_an_attempt_begins_uncertain_and_closes_one_left_open() -> None:
    row = delivery(attempts=1, status="sending", uncertain=True)
    interrupted = DeliveryAttempt(outcome="sending", number=1, started_at=NOW)
    attempt = outcomes.begin_attempt(row, interrupted, NOW)
    assert (row.attempts, row.status, row.uncertain) == (2, "sending", True)
    assert (attempt.number, attempt.delivery_id, attempt.started_at) == (2, row.id, NOW)
    assert (interrupted.outcome, interrupted.error_code) == ("unknown", "outcome_unknown")


def test_a_failure_keeps_whether_the_platform_may_have_the_post() -> None:
    for may_have_succeeded in (True, False):
        row = delivery(attempts=1, status="sending", uncertain=True)
        attempt = DeliveryAttempt(outcome="sending", number=1, started_at=NOW)
        error = PlatformError(ErrorCode.TIMEOUT, "no answer", may_have_succeeded=may_have_succeeded)
        retry_at = NOW + timedelta(seconds=2)
        outcomes.attempt_failed(row, attempt, error, Retry(retry_at), NOW)
        assert row.uncertain is may_have_succeeded
        assert (row.status, row.next_attempt_at, attempt.outcome) == (
            "pending",
            retry_at,
            "retrying",
        )


def test_a_final_failure_fails_the_delivery() -> None:
    row = delivery(attempts=3, status="sending")
    attempt = DeliveryAttempt(outcome="sending", number=3, started_at=NOW)
    error = PlatformError(ErrorCode.CONTENT_REJECTED, "x" * 2000, status=422)
    outcomes.attempt_failed(row, attempt, error, GiveUp("permanent"), NOW)
    assert (row.status, row.next_attempt_at, row.error_code) == (
        "failed",
        None,
        "content_rejected",
    )
    assert (attempt.outcome, attempt.http_status, len(attempt.message or "")) == (
        "failed",
        422,
        1000,
    )


def test_a_published_delivery_is_certain_and_a_retried_one_gets_its_attempts_again() -> None:
    row = delivery(attempts=2, status="sending", uncertain=True, error_code="timeout")
    outcomes.published(row, Published("p1", "https://example.test/p1", NOW))
    assert (row.status, row.external_id, row.uncertain, row.error_code) == (
        "published",
        "p1",
        False,
        None,
    )
    assert not outcomes.reopen(row)  # only a failed delivery is reopened

    failed = delivery(attempts=3, status="failed", error_code="timeout", uncertain=True)
    assert outcomes.reopen(failed)
    assert (failed.status, failed.attempts_allowed, failed.error_code) == ("pending", 6, None)
    assert failed.uncertain  # a retry still looks it up before sending
