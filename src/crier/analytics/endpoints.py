"""Analytics: saved views and their data, ad-hoc queries and top posts (`/v1/analytics`),
and a post's own figures (`/v1/posts/{id}/metrics`). All read what Crier stored; none asks
a network."""

from __future__ import annotations

from datetime import date
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Response, status

from crier.analytics import metrics_of, query, repository, views
from crier.analytics.schemas import (
    AnalyticsData,
    AnalyticsView,
    AnalyticsViewCreate,
    AnalyticsViewUpdate,
    BestTimes,
    Comparison,
    DayRange,
    Granularity,
    Metric,
    Period,
    PostMetrics,
    RelativeRange,
    TopPosts,
    ViewId,
)
from crier.auth.dependencies import acting_with, requires
from crier.auth.permissions import Permission
from crier.auth.principal import Acting, Principal
from crier.kit.body import JsonRoute
from crier.kit.errors import ValidationFailed, field_error
from crier.kit.http import DbSession, RequestClock, problem_responses
from crier.kit.pagination import Page, PageRequest, make_page, page_request
from crier.kit.time import Day
from crier.social_account.schemas import Platform

router = APIRouter(prefix="/analytics", tags=["Analytics"], route_class=JsonRoute)
posts_router = APIRouter(prefix="/posts", tags=["Analytics"], route_class=JsonRoute)
CanRead = Annotated[Principal, requires(Permission.ANALYTICS_READ)]
Saving = Annotated[Acting, acting_with(Permission.ANALYTICS_READ)]


def _today(principal: Principal, clock: RequestClock) -> date:
    return clock.now().astimezone(ZoneInfo(principal.workspace_timezone)).date()


def _range(relative: RelativeRange | None, first: object, last: object) -> RelativeRange | DayRange:
    """The range a query names: relative, or by days (both), not both nor neither."""
    if relative is not None and (first is not None or last is not None):
        raise ValidationFailed(
            "Give `range` or `from` and `to`, not both.",
            [field_error(["query", "range"], "with `from` or `to`", "range_twice")],
        )
    if relative is not None:
        return relative
    if first is None or last is None:
        raise ValidationFailed(
            "Give `range` (such as last_30_days) or both `from` and `to`.",
            [field_error(["query", "from" if first is None else "to"], "missing", "missing")],
        )
    try:
        return DayRange.model_validate({"from": first, "to": last})
    except ValueError as exc:
        message = str(exc).splitlines()[-1].strip().removeprefix("Value error, ")
        raise ValidationFailed(
            message, [field_error(["query", "to"], message, "range_invalid")]
        ) from None


RangeQuery = Annotated[
    RelativeRange | None,
    Query(alias="range", description="A relative range; or give `from` and `to`."),
]
FromQuery = Annotated[
    Day | None, Query(alias="from", description="The first day (with `to`), YYYY-MM-DD.")
]
ToQuery = Annotated[Day | None, Query(alias="to", description="The last day, included.")]
AccountsQuery = Annotated[
    list[UUID] | None,
    Query(
        alias="social_account_id",
        max_length=100,
        description="Only these accounts (repeat it); every account without it.",
    ),
]
PlatformsQuery = Annotated[
    list[Platform] | None,
    Query(alias="platform", max_length=10, description="Only these platforms (repeat it)."),
]


@router.post(
    "/views",
    status_code=status.HTTP_201_CREATED,
    response_model=AnalyticsView,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_view(
    data: AnalyticsViewCreate, acting: Saving, response: Response
) -> AnalyticsView:
    """Save a view: accounts or platforms (or every account), metrics, a range (relative,
    so that it moves with the days, or by date), steps and a comparison."""
    view = await views.create(acting.session, acting.clock, acting.principal.workspace_id, data)
    response.headers["Location"] = f"/v1/analytics/views/{view.id}"
    return views.shown(view)


@router.get(
    "/views", response_model=Page[AnalyticsView], responses=problem_responses(401, 403, 422)
)
async def list_views(
    _: CanRead, session: DbSession, page: Annotated[PageRequest, Depends(page_request)]
) -> Page[AnalyticsView]:
    """The workspace's saved views, oldest first."""
    rows = await repository.views(session, after=page.after, limit=page.limit + 1)
    items, cursor = make_page([views.shown(v) for v in rows], page.limit, lambda v: v.id)
    return Page[AnalyticsView](data=items, next_cursor=cursor)


@router.get(
    "/views/{view_id}",
    response_model=AnalyticsView,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_view(view_id: ViewId, _: CanRead, session: DbSession) -> AnalyticsView:
    """One saved view."""
    return views.shown(await views.get(session, view_id))


@router.patch(
    "/views/{view_id}",
    response_model=AnalyticsView,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_view(view_id: ViewId, data: AnalyticsViewUpdate, acting: Saving) -> AnalyticsView:
    """Change a saved view."""
    return views.shown(await views.update(acting.session, view_id, data))


@router.delete(
    "/views/{view_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_view(view_id: ViewId, acting: Saving) -> Response:
    """Delete a saved view."""
    await views.delete(acting.session, view_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/views/{view_id}/data",
    response_model=AnalyticsData,
    responses=problem_responses(401, 403, 404, 422),
)
async def view_data(
    view_id: ViewId, principal: CanRead, session: DbSession, clock: RequestClock
) -> AnalyticsData:
    """The view's figures now: a series per metric, its total and the comparison's, from
    the daily snapshots (today's are made after tonight's midnight)."""
    view = await views.get(session, view_id)
    shown = views.shown(view)
    return await query.data(
        session,
        principal.workspace_timezone,
        _today(principal, clock),
        scope=views.scope_of(view),
        metrics=shown.metrics,
        range_=shown.range,
        granularity=shown.granularity,
        comparison=shown.comparison,
    )


@router.get("/query", response_model=AnalyticsData, responses=problem_responses(401, 403, 404, 422))
async def query_data(
    principal: CanRead,
    session: DbSession,
    clock: RequestClock,
    metric: Annotated[
        list[Metric], Query(min_length=1, max_length=15, description="The figures (repeat it).")
    ],
    relative: RangeQuery = None,
    first: FromQuery = None,
    last: ToQuery = None,
    social_account_ids: AccountsQuery = None,
    platforms: PlatformsQuery = None,
    granularity: Annotated[Granularity, Query(description="The steps.")] = Granularity.DAY,
    comparison: Annotated[
        Comparison | None, Query(description="The period to compare with.")
    ] = None,
) -> AnalyticsData:
    """Figures as a saved view would show them, without saving one."""
    return await query.data(
        session,
        principal.workspace_timezone,
        _today(principal, clock),
        scope=query.Scope(social_account_ids, [p.value for p in platforms] if platforms else None),
        metrics=metric,
        range_=_range(relative, first, last),
        granularity=granularity,
        comparison=comparison,
    )


@router.get("/top-posts", response_model=TopPosts, responses=problem_responses(401, 403, 404, 422))
async def top_posts(
    principal: CanRead,
    session: DbSession,
    clock: RequestClock,
    metric: Annotated[Metric, Query(description="What to rank by.")] = Metric.ENGAGEMENTS,
    relative: RangeQuery = None,
    first: FromQuery = None,
    last: ToQuery = None,
    social_account_ids: AccountsQuery = None,
    platforms: PlatformsQuery = None,
    limit: Annotated[int, Query(ge=1, le=100, description="How many posts.")] = 10,
) -> TopPosts:
    """The posts published in the range (days in the workspace timezone), best first by
    the metric's latest figures added up over their targets."""
    timezone = principal.workspace_timezone
    range_ = _range(
        relative or (None if first or last else RelativeRange.LAST_30_DAYS), first, last
    )
    a, b = query.resolve(range_, _today(principal, clock))
    scope = query.Scope(social_account_ids, [p.value for p in platforms] if platforms else None)
    return await metrics_of.top_posts(
        session, timezone, Period(first=a, last=b), scope, metric, limit
    )


@router.get(
    "/best-times", response_model=BestTimes, responses=problem_responses(401, 403, 404, 422)
)
async def best_times(
    principal: CanRead,
    session: DbSession,
    clock: RequestClock,
    social_account_id: Annotated[UUID, Query(description="The account.")],
    weeks: Annotated[
        int, Query(ge=8, le=104, description="How many weeks back its posts are looked at.")
    ] = 26,
) -> BestTimes:
    """When the account's own posts did best: engagements a week after publishing, by
    weekday and hour of publishing in the workspace timezone, with how much history the
    answer rests on (`history.enough`: at least 8 weeks of it)."""
    return await metrics_of.best_times(
        session, principal.workspace_timezone, social_account_id, clock.now(), weeks
    )


@posts_router.get(
    "/{post_id}/metrics",
    response_model=PostMetrics,
    responses=problem_responses(401, 403, 404, 422),
)
async def post_metrics(post_id: UUID, _: CanRead, session: DbSession) -> PostMetrics:
    """Each target's figures: the latest and every observation, as its network gave them."""
    return await metrics_of.post(session, post_id)
