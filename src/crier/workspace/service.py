"""Creating and changing workspaces."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crier.analytics import repository as analytics_repository
from crier.auth.service import issue_key
from crier.kit.db import enter_workspace, raise_on_violation, set_local
from crier.kit.errors import (
    Conflict,
    NotFound,
    PlanLimitExceeded,
    ValidationFailed,
    field_error,
)
from crier.kit.ids import new_id
from crier.kit.time import is_iana_timezone
from crier.member import repository as member_repository
from crier.member.service import add_owner
from crier.models import ApiKey, Member
from crier.models import Workspace as WorkspaceRow
from crier.post import repository as post_repository
from crier.social_account import repository as account_repository
from crier.workspace import plans, repository
from crier.workspace.schemas import PlanLimits, PlanUsage, Workspace, WorkspaceUpdate


class SlugTaken(Conflict):
    """Another workspace already uses this slug; slugs are unique across the server."""

    slug = "slug-taken"
    title = "Slug taken"


@dataclass(frozen=True)
class NewWorkspace:
    workspace: WorkspaceRow
    owner: Member
    api_key: ApiKey
    api_key_secret: str


def check_timezone(timezone: str, loc: list[str | int]) -> str:
    if not is_iana_timezone(timezone):
        raise ValidationFailed(
            f"'{timezone}' is not an IANA timezone.",
            [
                field_error(
                    loc,
                    "must be an IANA timezone such as 'Europe/Paris' or 'UTC'",
                    "invalid_timezone",
                )
            ],
        )
    return timezone


def slug_from_name(name: str) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:50].strip("-")
    return base or "workspace"


async def create_workspace(
    session: AsyncSession,
    *,
    name: str,
    timezone: str = "UTC",
    plan: str = plans.PlanName.FREE,
    slug: str | None = None,
    owner_email: str | None = None,
    owner_name: str = "Owner",
) -> NewWorkspace:
    """Create a workspace with its first owner and an API key for that owner.

    With no `slug`, one is made from the name, with a random suffix if the name's is taken.
    With no `owner_email`, the owner is `owner@<slug>.invalid` until someone else is added.
    """
    check_timezone(timezone, ["timezone"])
    plan = plans.PlanName(plan)
    workspace_id = new_id()
    await enter_workspace(session, workspace_id)
    candidates = (
        [slug]
        if slug
        else [slug_from_name(name)]
        + [f"{slug_from_name(name)[:43]}-{secrets.token_hex(3)}" for _ in range(5)]
    )
    for candidate in candidates:
        try:
            async with session.begin_nested():
                workspace = WorkspaceRow(
                    id=workspace_id, slug=candidate, name=name, plan=plan.value, timezone=timezone
                )
                session.add(workspace)
                await session.flush()
            break
        except IntegrityError:
            if workspace in session:  # the savepoint's rollback may have removed it already
                session.expunge(workspace)
            if slug:
                raise SlugTaken(f"The slug '{slug}' is taken.") from None
    else:  # pragma: no cover - six collisions in a row
        raise SlugTaken("Could not find a free slug; pass one explicitly.")
    await session.refresh(workspace)
    owner = await add_owner(
        session, workspace_id, owner_email or f"owner@{workspace.slug}.invalid", owner_name
    )
    key, secret = await issue_key(session, owner, "created with the workspace")
    return NewWorkspace(workspace, owner, key, secret)


async def get_workspace(session: AsyncSession, workspace_id: UUID, now: datetime) -> Workspace:
    workspace = await repository.get(session, workspace_id)
    if workspace is None:
        raise NotFound("No such workspace.")
    return await _to_schema(session, workspace, now)


async def update_workspace(
    session: AsyncSession, workspace_id: UUID, data: WorkspaceUpdate, now: datetime
) -> Workspace:
    # A new timezone moves the months' boundaries: they are counted afresh, with no
    # scheduler committing meanwhile (each takes KEY SHARE on the workspace at commit).
    workspace = await repository.lock(session, workspace_id, exclusive=data.timezone is not None)
    if data.timezone is not None:
        zone = check_timezone(data.timezone, ["body", "timezone"])
        if zone != workspace.timezone:
            workspace.timezone = zone
            await session.flush()
            await post_repository.recount_scheduled(session)
            await analytics_repository.redo_every_day(session, now)  # its days moved
    if data.name is not None:
        workspace.name = data.name
    if data.slug is not None and data.slug != workspace.slug:
        workspace.slug = data.slug
        try:
            async with session.begin_nested():
                await session.flush()
        except IntegrityError:
            raise SlugTaken(f"The slug '{data.slug}' is taken.") from None
    await session.flush()
    await session.refresh(workspace)
    return await _to_schema(session, workspace, now)


SCHEDULED_POSTS_SETTING = "crier.scheduled_posts_per_month"
"""The transaction setting the database checks each month's scheduled posts against at
commit (migration 0008); unset, nothing is checked."""


SCHEDULED_POSTS_CONSTRAINT = "scheduled_posts_per_month"
"""The check a commit fails when a month would hold more scheduled posts than the plan's
limit (migration 0008)."""


def scheduled_posts_limit(plan: str) -> tuple[int, PlanLimitExceeded]:
    """The plan's monthly limit on scheduled posts, to set as `SCHEDULED_POSTS_SETTING` in
    a transaction, and the error to raise in place of `SCHEDULED_POSTS_CONSTRAINT`'s: if at
    commit one of the months the transaction added posts to holds more, the commit fails.

    The months are counted at commit, each month's row held only while its transaction
    commits, so concurrent schedulers cannot both take the last slot, nor wait for each
    other's work before that.
    """
    limit = plans.limits_of(plan).scheduled_posts_per_month
    return limit, PlanLimitExceeded(plan, "scheduled_posts_per_month", limit)


async def hold_to_scheduled_posts_limit(session: AsyncSession, plan: str) -> None:
    """Hold this transaction to the plan's monthly limit on scheduled posts (see
    `scheduled_posts_limit`)."""
    limit, error = scheduled_posts_limit(plan)
    raise_on_violation(session, SCHEDULED_POSTS_CONSTRAINT, error)
    await set_local(session, SCHEDULED_POSTS_SETTING, str(limit))


async def _to_schema(session: AsyncSession, workspace: WorkspaceRow, now: datetime) -> Workspace:
    month_start, _ = plans.month_of(now, workspace.timezone)
    return Workspace(
        id=workspace.id,
        slug=workspace.slug,
        name=workspace.name,
        plan=plans.PlanName(workspace.plan),
        timezone=workspace.timezone,
        limits=PlanLimits(**plans.limits_of(workspace.plan).as_dict()),
        usage=PlanUsage(
            members=await member_repository.count_active(session),
            social_accounts=await account_repository.count_connected(session),
            scheduled_posts_this_month=await post_repository.scheduled_in_month(
                session, month_start
            ),
        ),
        created_at=workspace.created_at,
        updated_at=workspace.updated_at,
    )
