"""Replies to reviews: asking for one (or its removal), what the network's answer does to
the review, reply templates, and the reply history.

A reply asked for is a row of `review_replies`, committed with the review's new state
(`reply_status: pending`) in the request's transaction; workers send it (see
`crier.review.sending`). So a reply accepted is never lost, whatever crashes after. The
networks' reply call is an upsert (Google's `PUT .../reply`, the sandbox's), so sending it
again after a crash leaves one reply.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth.principal import Principal
from crier.kit.concurrency import IfMatch, require_match
from crier.kit.db import raise_on_violation
from crier.kit.errors import Conflict, CrierError, NotFound, ValidationFailed, field_error
from crier.kit.ids import new_id
from crier.kit.time import Clock
from crier.models import Review, ReviewReplyRecord, ReviewTemplate, SocialAccount
from crier.platforms.base import ReplyReceipt
from crier.platforms.registry import Platforms
from crier.review import repository, service, templates
from crier.review.schemas import (
    MAX_REPLY_BYTES,
    ReplyError,
    ReplyRecord,
    ReplyRequest,
    ReplyText,
    ReviewDetail,
    ReviewTemplateCreate,
    ReviewTemplateUpdate,
)
from crier.review.tasks import unusable
from crier.social_account import repository as account_repository
from crier.webhook import events
from crier.webhook.events import EventType


class ReviewRemoved(CrierError):
    """The review was removed from the network, so it can no longer be replied to (its
    reply cannot be removed either). It stays in Crier, with `removed_at`."""

    slug = "review-removed"
    title = "Review removed"
    status = 409


class LocationUnavailable(CrierError):
    """The review's location cannot be reached: its account is expired, revoked or
    disconnected (reconnect it), or this server is not configured for its network."""

    slug = "location-unavailable"
    title = "Location unavailable"
    status = 409


class TemplateNameTaken(Conflict):
    """Another reply template of the workspace has this name."""

    slug = "template-name-taken"
    title = "Template name taken"


async def request(
    session: AsyncSession,
    platforms: Platforms,
    clock: Clock,
    principal: Principal,
    review_id: UUID,
    expected: IfMatch | None,
    asked: ReplyRequest | None,
) -> Review:
    """Ask for the review's reply to be `asked` (its removal, when None), at the version
    the caller read. A reply asked for earlier and not yet sent gives way to this one."""
    review = await repository.get(session, review_id, lock=True)
    if review is None:
        raise NotFound("No review with this id in this workspace.")
    require_match(expected, review.feed_sequence)
    if review.removed_at is not None:
        raise ReviewRemoved("The review was removed from the network.")
    account = await account_repository.get(session, review.social_account_id)
    problem = unusable(platforms, account)
    if problem is not None:
        raise LocationUnavailable(
            f"The review's location cannot be reached ({problem.value}).", code=problem.value
        )
    assert account is not None
    text: str | None = None
    template_id: UUID | None = None
    if isinstance(asked, ReplyText):
        text = asked.text
    elif asked is not None:
        template_id = asked.template_id
        text = await _from_template(session, template_id, review, account)
    await repository.supersede_pending(session, review.id)
    session.add(
        ReviewReplyRecord(
            workspace_id=review.workspace_id,
            review_id=review.id,
            action="reply" if text is not None else "delete",
            text=text,
            origin="crier",
            status="pending",
            requested_by=principal.member_id,
            template_id=template_id,
            next_attempt_at=clock.now(),
        )
    )
    review.reply_status, review.reply_error, review.reply_error_message = "pending", None, None
    [review.feed_sequence] = await repository.take_sequences(session, 1)
    await session.flush()
    return review


async def _from_template(
    session: AsyncSession, template_id: UUID, review: Review, account: SocialAccount
) -> str:
    template = await repository.template(session, template_id)
    if template is None:
        raise ValidationFailed(
            "No reply template with this id in this workspace.",
            [field_error(["body", "template_id"], "no such template", "not_found")],
        )
    return fill(template, review, account)


def fill(template: ReviewTemplate, review: Review, account: SocialAccount) -> str:
    """The template's text filled from the review; refused if it comes out empty or too
    long for a reply."""
    text = templates.render(
        template.text,
        {
            "reviewer_name": review.reviewer_name,
            "location_name": account.display_name or account.handle,
            "rating": str(review.rating),
        },
    )
    if not text.strip() or len(text.encode()) > MAX_REPLY_BYTES:
        raise ValidationFailed(
            f"The template fills to a reply that is empty or over {MAX_REPLY_BYTES} bytes.",
            [field_error(["body", "template_id"], "not a valid reply here", "reply_length")],
        )
    return text


async def confirmed(
    session: AsyncSession,
    clock: Clock,
    record: ReviewReplyRecord,
    receipt: ReplyReceipt | None,
) -> None:
    """The network took the reply (`receipt`) or its removal (None): the review shows what
    the network now shows. Unless a newer reply was asked meanwhile, the request is done,
    announced as `review.replied` (or `review.updated`, for a removal)."""
    now = clock.now()
    review = await repository.get(session, record.review_id, lock=True)
    assert review is not None
    latest = record.status == "pending"
    record.leased_until, record.sent_at, record.next_attempt_at = None, now, None
    record.error_code = record.error_message = None
    if latest:
        record.status = "sent"
        review.reply_status, review.reply_error, review.reply_error_message = None, None, None
    if receipt is not None:
        review.reply, review.reply_updated_at = receipt.text, receipt.updated_at
        review.responded_at = review.responded_at or receipt.updated_at
        # On the network's clock: what a sync read before the reply is older, and is not
        # taken for a change made elsewhere. (A removal has no time from the network: a
        # page read before it shows the reply again until the next sync.)
        review.network_updated_at = max(review.network_updated_at, receipt.updated_at)
    else:
        review.reply = review.reply_updated_at = None
    [review.feed_sequence] = await repository.take_sequences(session, 1)
    await session.flush()
    if latest:
        kind = EventType.REVIEW_REPLIED if receipt is not None else EventType.REVIEW_UPDATED
        await _announce(session, now, kind, review)


async def failed(
    session: AsyncSession,
    clock: Clock,
    record: ReviewReplyRecord,
    code: str,
    message: str | None,
    retry_at: datetime | None,
) -> None:
    """Sending the reply failed: tried again at `retry_at`, or, without one, failed for
    good, shown on the review (`reply_status: failed`) and announced as
    `review.reply_failed` (unless a newer reply was asked meanwhile)."""
    record.leased_until = None
    record.error_code, record.error_message = code, message
    if record.status != "pending":
        return
    if retry_at is not None:
        record.next_attempt_at = retry_at
        return
    now = clock.now()
    record.status, record.next_attempt_at = "failed", None
    review = await repository.get(session, record.review_id, lock=True)
    assert review is not None
    review.reply_status, review.reply_error, review.reply_error_message = "failed", code, message
    [review.feed_sequence] = await repository.take_sequences(session, 1)
    await session.flush()
    await _announce(session, now, EventType.REVIEW_REPLY_FAILED, review)


async def _announce(session: AsyncSession, now: datetime, kind: EventType, review: Review) -> None:
    await events.emit_many(session, now, kind, [(service.review_out(review), None)])
    await events.notify(session)


def record_out(record: ReviewReplyRecord) -> ReplyRecord:
    error = (
        ReplyError(code=record.error_code, message=record.error_message)
        if record.error_code is not None
        else None
    )
    return ReplyRecord.model_validate(
        {
            "id": record.id,
            "action": record.action,
            "text": record.text,
            "origin": record.origin,
            "status": record.status,
            "attempts": record.attempts,
            "error": error,
            "requested_by": record.requested_by,
            "template_id": record.template_id,
            "requested_at": record.created_at,
            "sent_at": record.sent_at,
        }
    )


async def detail(session: AsyncSession, review: Review) -> ReviewDetail:
    """The review with its reply history."""
    history = await repository.replies(session, review.id)
    return ReviewDetail.model_validate(
        service.review_out(review).model_dump() | {"replies": [record_out(r) for r in history]}
    )


# Templates.


async def create_template(
    session: AsyncSession, workspace_id: UUID, data: ReviewTemplateCreate
) -> ReviewTemplate:
    template = ReviewTemplate(
        id=new_id(), workspace_id=workspace_id, name=data.name, text=data.text
    )
    session.add(template)
    await _flush_named(session, data.name)
    return template


async def get_template(session: AsyncSession, template_id: UUID) -> ReviewTemplate:
    template = await repository.template(session, template_id)
    if template is None:
        raise NotFound("No reply template with this id in this workspace.")
    return template


async def update_template(
    session: AsyncSession, clock: Clock, template_id: UUID, data: ReviewTemplateUpdate
) -> ReviewTemplate:
    template = await get_template(session, template_id)
    if data.name is not None:
        template.name = data.name
    if data.text is not None:
        template.text = data.text
    template.updated_at = clock.now()
    await _flush_named(session, template.name)
    return template


async def delete_template(session: AsyncSession, template_id: UUID) -> None:
    await session.delete(await get_template(session, template_id))
    await session.flush()


async def list_templates(
    session: AsyncSession, after: UUID | None, limit: int
) -> Sequence[ReviewTemplate]:
    return await repository.templates(session, after, limit)


async def _flush_named(session: AsyncSession, name: str) -> None:
    raise_on_violation(
        session,
        "uq_review_templates_workspace_id_name",
        TemplateNameTaken(f"A reply template is already named {name!r}."),
    )
    await session.flush()
