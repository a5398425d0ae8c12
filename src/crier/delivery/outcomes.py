"""What happens to a delivery and its attempts: every change of a delivery's state.

A delivery is `pending` until an attempt begins (`sending`), then `published`, `pending`
again to retry, `failed`, or `cancelled` with its post. Each attempt is written down
before it is sent and closed by its answer. The set-based versions of "begin" and
"published", for many deliveries at once, are in `crier.delivery.repository`.
"""

from __future__ import annotations

from datetime import datetime

from crier.delivery import MAX_ATTEMPTS
from crier.delivery.retry import GiveUp, Retry
from crier.kit.ids import new_id
from crier.models import Delivery, DeliveryAttempt
from crier.platforms.base import Published
from crier.platforms.errors import ErrorCode, PlatformError

OPEN = frozenset({"pending", "sending"})
"""Statuses of a delivery still to be settled."""
_MESSAGE_LIMIT = 1000


def begin_attempt(
    delivery: Delivery, interrupted: DeliveryAttempt | None, now: datetime
) -> DeliveryAttempt:
    """The attempt about to be made (to add to the session), closing `interrupted`: an
    earlier attempt left open, not found on the platform."""
    if interrupted is not None:
        _close_unknown(interrupted, "interrupted; not found on the platform, so sent again", now)
    delivery.attempts += 1
    delivery.status = "sending"
    delivery.uncertain = True
    return DeliveryAttempt(
        id=new_id(),
        workspace_id=delivery.workspace_id,
        delivery_id=delivery.id,
        number=delivery.attempts,
        started_at=now,
    )


def unknowable(
    delivery: Delivery, interrupted: DeliveryAttempt | None, message: str, now: datetime
) -> None:
    """Failed for good because whether the platform made the post can no longer be told,
    and sending it again could make a second one: closing `interrupted`, if left open."""
    if interrupted is not None:
        _close_unknown(interrupted, message, now)
    failed(delivery, ErrorCode.OUTCOME_UNKNOWN, message)


def _close_unknown(attempt: DeliveryAttempt, message: str, now: datetime) -> None:
    """Close an attempt left open whose result the platform could not tell."""
    attempt.outcome = "unknown"
    attempt.finished_at = now
    attempt.error_code = ErrorCode.OUTCOME_UNKNOWN.value
    attempt.message = message


def published(delivery: Delivery, answer: Published) -> None:
    """The platform has the post."""
    delivery.status = "published"
    delivery.external_id = answer.external_id
    delivery.permalink = answer.permalink
    delivery.published_at = answer.published_at
    delivery.next_attempt_at = None
    delivery.error_code = None
    delivery.error_message = None
    delivery.uncertain = False


def found(
    delivery: Delivery, attempts: list[DeliveryAttempt], answer: Published, now: datetime
) -> None:
    """The platform had the post all along (looked up by its idempotency key): the last
    attempt, whose outcome was unknown, did publish."""
    if attempts:
        last = attempts[-1]
        last.outcome = "published"
        last.finished_at = last.finished_at or now
        last.message = "found on the platform by its idempotency key"
    published(delivery, answer)


def failed(delivery: Delivery, code: ErrorCode, message: str) -> None:
    """Failed for good, without an attempt (the account cannot publish). Whether an earlier
    attempt may have reached the platform is kept: a retry looks it up first."""
    delivery.status = "failed"
    delivery.error_code = code.value
    delivery.error_message = message
    delivery.next_attempt_at = None


def attempt_failed(
    delivery: Delivery,
    attempt: DeliveryAttempt,
    error: PlatformError,
    decision: Retry | GiveUp,
    now: datetime,
) -> None:
    """The attempt failed with `error`; `decision` (the retry policy's) says what next."""
    message = error.message[:_MESSAGE_LIMIT]
    attempt.finished_at = now
    attempt.http_status = error.status
    attempt.error_code = error.code.value
    attempt.message = message
    delivery.error_code = error.code.value
    delivery.error_message = message
    delivery.uncertain = error.may_have_succeeded
    if isinstance(decision, Retry):
        attempt.outcome = "retrying"
        delivery.status = "pending"
        delivery.next_attempt_at = decision.at
    else:
        attempt.outcome = "failed"
        delivery.status = "failed"
        delivery.next_attempt_at = None


def lookup_deferred(
    delivery: Delivery, error: PlatformError, message: str, again_at: datetime
) -> None:
    """A delivery of unknown outcome could not be looked up, on a network where a resend
    could post twice: it stays uncertain, to be looked up again at `again_at`; nothing
    was sent, so no attempt is counted."""
    delivery.status = "pending"
    delivery.uncertain = True
    delivery.next_attempt_at = again_at
    delivery.error_code = error.code.value
    delivery.error_message = (message + error.message)[:_MESSAGE_LIMIT]


def reopen(delivery: Delivery) -> bool:
    """Give a failed delivery as many attempts again (its post is retried); returns whether
    it was failed. Earlier attempts stay listed."""
    if delivery.status != "failed":
        return False
    delivery.status = "pending"
    delivery.attempts_allowed = delivery.attempts + MAX_ATTEMPTS
    delivery.next_attempt_at = None
    delivery.error_code = None
    delivery.error_message = None
    return True
