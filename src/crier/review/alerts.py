"""Alert rules on reviews: a rule (a rating at most N, a sentiment under S, on chosen
locations or all) that a review matches is announced once as `review.alert`, in the same
transaction as the change that made it match, through the events outbox.

A rule looks only at what the network changed from the moment it was made on
(`active_from`): a location's old reviews, read by its first sync, raise no alerts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db import raise_on_violation
from crier.kit.errors import Conflict, NotFound, ValidationFailed, field_error
from crier.kit.ids import new_id
from crier.kit.time import Clock
from crier.models import Review, ReviewAlert, ReviewAlertRule
from crier.review import repository
from crier.review.schemas import (
    AlertedRule,
    ReviewAlertEvent,
    ReviewAlertRuleCreate,
    ReviewAlertRuleUpdate,
)
from crier.review.schemas import Review as ReviewOut
from crier.webhook import events
from crier.webhook.events import EventType


class RuleNameTaken(Conflict):
    """Another alert rule of the workspace has this name."""

    slug = "alert-rule-name-taken"
    title = "Alert rule name taken"


def matches(rule: ReviewAlertRule, review: Review) -> bool:
    """Whether the review, as it is now, raises the rule's alert."""
    return (
        rule.enabled
        and review.network_updated_at >= rule.active_from
        and (rule.social_account_ids is None or review.social_account_id in rule.social_account_ids)
        and (rule.max_rating is None or review.rating <= rule.max_rating)
        and (
            rule.sentiment_below is None
            or (review.sentiment is not None and review.sentiment < rule.sentiment_below)
        )
    )


async def evaluate(
    session: AsyncSession,
    now: datetime,
    reviews: Sequence[Review],
    review_out: Callable[[Review], ReviewOut],
) -> int:
    """Raise the alerts these reviews, just stored, newly match (once per rule and review),
    each review shown by `review_out`; returns how many."""
    rules = await repository.alert_rules(session, enabled=True) if reviews else []
    pairs = [(rule, review) for review in reviews for rule in rules if matches(rule, review)]
    if not pairs:
        return 0
    raised = await session.execute(
        insert(ReviewAlert)
        .values(
            [
                {
                    "workspace_id": r.workspace_id,
                    "id": new_id(),
                    "rule_id": rule.id,
                    "review_id": r.id,
                }
                for rule, r in pairs
            ]
        )
        .on_conflict_do_nothing(
            index_elements=[ReviewAlert.workspace_id, ReviewAlert.rule_id, ReviewAlert.review_id]
        )
        .returning(ReviewAlert.rule_id, ReviewAlert.review_id)
    )
    new = {(row.rule_id, row.review_id) for row in raised}
    announced = [
        (
            ReviewAlertEvent(
                rule=AlertedRule(id=rule.id, name=rule.name), review=review_out(review)
            ),
            None,
        )
        for rule, review in pairs
        if (rule.id, review.id) in new
    ]
    if announced:
        await events.emit_many(session, now, EventType.REVIEW_ALERT, announced)
        await events.notify(session)
    return len(announced)


async def _check_locations(session: AsyncSession, account_ids: Sequence[UUID] | None) -> None:
    if account_ids is None:
        return
    known = await repository.location_ids(session, account_ids)
    unknown = [str(a) for a in account_ids if a not in known]
    if unknown:
        raise ValidationFailed(
            f"No location with these ids in this workspace: {', '.join(unknown)}.",
            [field_error(["body", "social_account_ids"], "unknown location", "not_found")],
        )


async def create_rule(
    session: AsyncSession, clock: Clock, workspace_id: UUID, data: ReviewAlertRuleCreate
) -> ReviewAlertRule:
    await _check_locations(session, data.social_account_ids)
    rule = ReviewAlertRule(
        id=new_id(),
        workspace_id=workspace_id,
        name=data.name,
        max_rating=data.max_rating,
        sentiment_below=data.sentiment_below,
        social_account_ids=data.social_account_ids,
        enabled=data.enabled,
        active_from=clock.now(),
    )
    session.add(rule)
    await _flush_named(session, data.name)
    return rule


async def get_rule(session: AsyncSession, rule_id: UUID) -> ReviewAlertRule:
    rule = await repository.alert_rule(session, rule_id)
    if rule is None:
        raise NotFound("No alert rule with this id in this workspace.")
    return rule


async def update_rule(
    session: AsyncSession, clock: Clock, rule_id: UUID, data: ReviewAlertRuleUpdate
) -> ReviewAlertRule:
    rule = await get_rule(session, rule_id)
    given = data.model_fields_set
    if "social_account_ids" in given:
        await _check_locations(session, data.social_account_ids)
        rule.social_account_ids = data.social_account_ids
    for name in ("max_rating", "sentiment_below"):
        if name in given:
            setattr(rule, name, getattr(data, name))
    for name in ("name", "enabled"):
        if getattr(data, name) is not None:
            setattr(rule, name, getattr(data, name))
    if rule.max_rating is None and rule.sentiment_below is None:
        raise ValidationFailed(
            "An alert rule keeps a condition: `max_rating`, `sentiment_below` or both.",
            [field_error(["body"], "no condition left", "no_condition")],
        )
    rule.updated_at = clock.now()
    await _flush_named(session, rule.name)
    return rule


async def delete_rule(session: AsyncSession, rule_id: UUID) -> None:
    await session.delete(await get_rule(session, rule_id))
    await session.flush()


async def _flush_named(session: AsyncSession, name: str) -> None:
    raise_on_violation(
        session,
        "uq_review_alert_rules_workspace_id_name",
        RuleNameTaken(f"An alert rule is already named {name!r}."),
    )
    await session.flush()
