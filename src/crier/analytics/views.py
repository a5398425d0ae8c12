"""Saved analytics views: what a dashboard or an export shows, kept by name."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.analytics import query, repository
from crier.analytics.schemas import AnalyticsView as ViewOut
from crier.analytics.schemas import (
    AnalyticsViewCreate,
    AnalyticsViewUpdate,
    Comparison,
    DayRange,
    Granularity,
    Metric,
    RelativeRange,
)
from crier.kit.db import raise_on_violation
from crier.kit.errors import Conflict, NotFound
from crier.kit.ids import new_id
from crier.kit.time import Clock
from crier.models import AnalyticsView


class ViewNameTaken(Conflict):
    """Another saved analytics view of the workspace has this name."""

    slug = "analytics-view-name-taken"
    title = "Analytics view name taken"


def shown(view: AnalyticsView) -> ViewOut:
    range_: RelativeRange | DayRange
    if view.relative_range is not None:
        range_ = RelativeRange(view.relative_range)
    else:
        assert view.first_day is not None
        assert view.last_day is not None
        range_ = DayRange.model_construct(first=view.first_day, last=view.last_day)
    return ViewOut(
        id=view.id,
        name=view.name,
        social_account_ids=view.social_account_ids,
        platforms=view.platforms,
        metrics=[Metric(m) for m in view.metrics],
        range=range_,
        granularity=Granularity(view.granularity),
        comparison=Comparison(view.comparison) if view.comparison else None,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


def _set_range(view: AnalyticsView, range_: RelativeRange | DayRange) -> None:
    if isinstance(range_, DayRange):
        view.relative_range, view.first_day, view.last_day = None, range_.first, range_.last
    else:
        view.relative_range, view.first_day, view.last_day = range_.value, None, None


async def _flush_named(session: AsyncSession, name: str) -> None:
    raise_on_violation(
        session,
        "uq_analytics_views_workspace_id_name",
        ViewNameTaken(f"A saved analytics view is already named {name!r}."),
    )
    await session.flush()


async def create(
    session: AsyncSession, clock: Clock, workspace_id: UUID, data: AnalyticsViewCreate
) -> AnalyticsView:
    scope = query.Scope(data.social_account_ids, data.platforms)
    await query.accounts(session, scope)
    view = AnalyticsView(
        id=new_id(),
        workspace_id=workspace_id,
        name=data.name,
        social_account_ids=data.social_account_ids,
        platforms=[p.value for p in data.platforms] if data.platforms else None,
        metrics=[m.value for m in dict.fromkeys(data.metrics)],
        granularity=data.granularity.value,
        comparison=data.comparison.value if data.comparison else None,
    )
    _set_range(view, data.range)
    session.add(view)
    await _flush_named(session, data.name)
    await session.refresh(view)
    return view


async def get(session: AsyncSession, view_id: UUID) -> AnalyticsView:
    view = await repository.view(session, view_id)
    if view is None:
        raise NotFound("No saved analytics view with this id in this workspace.")
    return view


async def update(session: AsyncSession, view_id: UUID, data: AnalyticsViewUpdate) -> AnalyticsView:
    view = await get(session, view_id)
    given = data.model_fields_set
    if "social_account_ids" in given:
        await query.accounts(session, query.Scope(data.social_account_ids, None))
        view.social_account_ids = data.social_account_ids
    if "platforms" in given:
        view.platforms = [p.value for p in data.platforms] if data.platforms else None
    if data.name is not None:
        view.name = data.name
    if data.metrics is not None:
        view.metrics = [m.value for m in dict.fromkeys(data.metrics)]
    if data.range is not None:
        _set_range(view, data.range)
    if data.granularity is not None:
        view.granularity = data.granularity.value
    if "comparison" in given:
        view.comparison = data.comparison.value if data.comparison else None
    await _flush_named(session, view.name)
    await session.refresh(view)
    return view


async def delete(session: AsyncSession, view_id: UUID) -> None:
    await session.delete(await get(session, view_id))
    await session.flush()


def scope_of(view: AnalyticsView) -> query.Scope:
    return query.Scope(view.social_account_ids, view.platforms)
