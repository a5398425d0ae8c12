"""The reviews inbox: storing what a sync reads, the change feed, and on-demand syncs."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.errors import NotFound, ValidationFailed, field_error
from crier.kit.ids import new_id
from crier.kit.pagination import invalid_cursor
from crier.kit.time import Clock
from crier.models import Review, ReviewReplyRecord, ReviewSync, SocialAccount
from crier.platforms.base import NetworkReview
from crier.platforms.registry import Platforms
from crier.review import alerts, repository, sentiment
from crier.review.repository import FeedFilters
from crier.review.schemas import ReplyError, ReviewReply, ReviewSyncState
from crier.review.schemas import Review as ReviewOut
from crier.social_account import repository as account_repository
from crier.webhook import events
from crier.webhook.events import EventType

FEED_CURSOR_PATTERN = "^[A-Za-f][A-Za-z0-9_-]{10}$"
"""A feed cursor: a position in the feed (below 2**63, so the first character carries a
zero top bit), 8 bytes in base64url without padding."""


def encode_feed_cursor(sequence: int) -> str:
    return base64.urlsafe_b64encode(sequence.to_bytes(8, "big")).decode().rstrip("=")


def decode_feed_cursor(cursor: str) -> int:
    try:
        position = int.from_bytes(base64.urlsafe_b64decode(cursor + "="), "big")
    except (binascii.Error, ValueError) as exc:
        raise invalid_cursor() from exc
    if position >= 2**63:  # no position is this great: not a cursor this API gave
        raise invalid_cursor()
    return position


def review_out(review: Review) -> ReviewOut:
    """A review as the API shows it."""
    reply = (
        ReviewReply(text=review.reply, updated_at=review.reply_updated_at)
        if review.reply is not None
        else None
    )
    error = (
        ReplyError(code=review.reply_error, message=review.reply_error_message)
        if review.reply_error is not None
        else None
    )
    return ReviewOut.model_validate(
        {
            name: getattr(review, name)
            for name in ReviewOut.model_fields
            if name not in ("reply", "sequence", "reply_error")
        }
        | {"reply": reply, "sequence": review.feed_sequence, "reply_error": error}
    )


def _scored(review: NetworkReview) -> dict[str, object]:
    found = sentiment.score(review.text, review.rating)
    return {
        "sentiment": found.score,
        "sentiment_label": found.label,
        "sentiment_source": found.source,
        "language": found.language,
    }


def _seen_reply(review: Review, fields: dict[str, object], now: datetime) -> ReviewReplyRecord:
    """The reply history's record of a reply made (or removed) on the network itself."""
    text = fields["reply"]
    made = fields["reply_updated_at"]
    return ReviewReplyRecord(
        workspace_id=review.workspace_id,
        review_id=review.id,
        action="reply" if text is not None else "delete",
        text=text,
        origin="network",
        status="sent",
        sent_at=made if isinstance(made, datetime) else now,
    )


def _differs(review: Review, fields: dict[str, object]) -> bool:
    return review.removed_at is not None or any(
        getattr(review, name) != value for name, value in fields.items()
    )


async def ingest(
    session: AsyncSession,
    clock: Clock,
    account: SocialAccount,
    reviews: Sequence[NetworkReview],
    scan: int | None = None,
) -> int:
    """Store reviews of the location as the network shows them: a new one is added, a
    changed one (text, rating, reply, or back after being removed) updated, and each
    change takes the feed's next number and is announced (`review.created`,
    `review.updated`); one that has not changed is left as it is. Sentiment is scored
    when the text or rating is new (or was never scored). With `scan`, each is
    marked seen by that full scan. Returns how many changed."""
    now = clock.now()
    existing = await repository.by_external_ids(
        session, account.id, [r.external_id for r in reviews]
    )
    changes: list[tuple[Review | None, dict[str, object]]] = []
    for seen in reviews:
        fields: dict[str, object] = {
            "rating": seen.rating,
            "body": seen.text or None,
            "reviewer_name": seen.reviewer_name,
            "reviewed_at": seen.created_at,
            "network_updated_at": seen.updated_at,
            "reply": seen.reply or None,
            "reply_updated_at": seen.reply_updated_at if seen.reply else None,
        }
        row = existing.get(seen.external_id)
        if row is not None and scan is not None:
            row.seen_in_scan = scan
        if row is not None and seen.updated_at < row.network_updated_at:
            continue  # read before a change Crier already holds (a reply it just sent)
        rescore = (
            row is None
            or row.sentiment is None
            or (row.rating, row.body) != (fields["rating"], fields["body"])
        )
        if rescore or (row is not None and _differs(row, fields)):
            if rescore:
                fields |= _scored(seen)
            changes.append((row, fields | {"external_id": seen.external_id}))
    if not changes:
        return 0
    # The reviews are locked first, the feed second, in every transaction that takes both.
    numbers = await repository.take_sequences(session, len(changes))
    created: list[Review] = []
    updated: list[Review] = []
    replies: list[ReviewReplyRecord] = []
    for (row, fields), number in zip(changes, numbers, strict=True):
        if row is None:
            row = Review(
                id=new_id(),  # now, for its reply history
                workspace_id=account.workspace_id,
                social_account_id=account.id,
                location_id=account.external_id,
                seen_in_scan=scan or 0,
            )
            session.add(row)
            created.append(row)
        else:
            updated.append(row)
        if row.reply != fields["reply"]:
            replies.append(_seen_reply(row, fields, now))
        for name, value in fields.items():
            setattr(row, name, value)
        if row.reply is not None and row.responded_at is None:
            row.responded_at = row.reply_updated_at or now
        row.removed_at = None
        row.feed_sequence = number
    session.add_all(replies)
    await session.flush()
    await _announce(session, now, EventType.REVIEW_CREATED, created)
    await _announce(session, now, EventType.REVIEW_UPDATED, updated)
    await alerts.evaluate(session, now, created + updated, review_out)
    return len(changes)


async def mark_removed(
    session: AsyncSession, clock: Clock, account: SocialAccount, scan: int
) -> int:
    """Mark removed the location's reviews that full scan `scan` did not see (the network
    no longer has them), each a change of the feed (`review.updated`); returns how many."""
    gone = await repository.not_seen_since(session, account.id, scan)
    if not gone:
        return 0
    now = clock.now()
    numbers = await repository.take_sequences(session, len(gone))
    for row, number in zip(gone, numbers, strict=True):
        row.removed_at = now
        row.feed_sequence = number
    await session.flush()
    await _announce(session, now, EventType.REVIEW_UPDATED, gone)
    return len(gone)


async def _announce(
    session: AsyncSession, now: datetime, type_: EventType, reviews: Sequence[Review]
) -> None:
    if reviews:
        await events.emit_many(session, now, type_, [(review_out(r), None) for r in reviews])
        await events.notify(session)


async def feed(
    session: AsyncSession, after: int, filters: FeedFilters, limit: int
) -> tuple[list[Review], int, bool]:
    """The reviews whose latest change follows position `after`, in feed order, with the
    position to go on from and whether more follow.

    The feed's committed end is read first, then only reviews at or before it: numbers
    commit in the order they are taken (see `repository.take_sequences`), so every review
    up to that end has committed, and one committing meanwhile has a later number, found
    by the next call. At the end, the next position is that end, so a filter that matches
    nothing does not make the next call read the same reviews again."""
    upto = await repository.committed_sequence(session)
    rows = await repository.feed(session, after, upto, filters, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    following = rows[-1].feed_sequence if more else max(after, upto)
    return rows, following, more


async def get(session: AsyncSession, review_id: UUID) -> Review:
    review = await repository.get(session, review_id)
    if review is None:
        raise NotFound("No review with this id in this workspace.")
    return review


def sync_state(sync: ReviewSync) -> ReviewSyncState:
    return ReviewSyncState(
        social_account_id=sync.social_account_id,
        next_sync_at=sync.next_sync_at,
        in_progress=sync.page_token is not None or sync.full_scan,
        last_synced_at=sync.last_synced_at,
        network_total=sync.network_total,
        last_error=sync.last_error,
        last_error_at=sync.last_error_at,
    )


async def request_sync(
    session: AsyncSession,
    platforms: Platforms,
    clock: Clock,
    workspace_id: UUID,
    account_id: UUID | None,
) -> list[ReviewSync]:
    """Make the location's sync (every active location's, when None) due now: a worker
    takes it within seconds. Returns the syncs asked for."""
    if account_id is not None:
        account = await account_repository.get(session, account_id)
        if account is None:
            raise NotFound("No social account with this id in this workspace.")
        if not platforms.has_reviews(account.platform):
            raise ValidationFailed(
                f"Accounts on {account.platform} have no reviews to sync.",
                [
                    field_error(
                        ["body", "social_account_id"], "this account has no reviews", "no_reviews"
                    )
                ],
            )
        accounts = [account]
    else:
        with_reviews = [p for p in platforms.names if platforms.has_reviews(p)]
        accounts = await account_repository.active_accounts(session, with_reviews)
    await repository.track(session, workspace_id, [a.id for a in accounts], clock.now())
    return await repository.syncs(session, account_id)
