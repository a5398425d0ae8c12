"""Analytics: saved views and their data, ad-hoc queries and top posts (`/v1/analytics`),
and a post's own figures (`/v1/posts/{id}/metrics`). All read what Crier stored; none asks
a network."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse, StreamingResponse

from crier.analytics import exports, metrics_of, query, reading, repository, views
from crier.analytics.answers import Answers
from crier.analytics.export_files import CONTENT_TYPES
from crier.analytics.schemas import (
    AnalyticsData,
    AnalyticsExport,
    AnalyticsExportCreate,
    AnalyticsView,
    AnalyticsViewCreate,
    AnalyticsViewUpdate,
    BestTimes,
    Comparison,
    DayRange,
    ExportId,
    Granularity,
    Metric,
    Period,
    PostMetrics,
    RelativeRange,
    TopPosts,
    ViewId,
)
from crier.auth.dependencies import (
    BEARER_KEY,
    IdempotentRequest,
    acting_with,
    presented_key_hash,
    requires,
)
from crier.auth.permissions import Permission
from crier.auth.principal import Acting, Principal
from crier.kit.body import JsonRoute
from crier.kit.errors import NotFound, ValidationFailed, field_error
from crier.kit.http import DbSession, RequestClock, problem_responses, respond
from crier.kit.idempotency import Recorded, fingerprint
from crier.kit.pagination import Page, PageRequest, make_page, page_request
from crier.kit.time import Day
from crier.social_account.schemas import Platform

router = APIRouter(prefix="/analytics", tags=["Analytics"], route_class=JsonRoute)
posts_router = APIRouter(prefix="/posts", tags=["Analytics"], route_class=JsonRoute)
CanRead = Annotated[Principal, requires(Permission.ANALYTICS_READ)]


async def kept_answers(request: Request) -> Answers:
    """This process's answers read from the snapshots, kept until they change. (Each of
    the dependencies of the data routes is a coroutine: FastAPI runs a plain function in a
    worker thread, a hop that costs more than these do.)"""
    kept: Answers = request.app.state.analytics_answers
    return kept


KeptAnswers = Annotated[Answers, Depends(kept_answers)]
KeyHash = Annotated[bytes, Depends(presented_key_hash)]
"""The request's API key, hashed: first, so that a request without one answers 401 before
anything else is checked."""
Saving = Annotated[Acting, acting_with(Permission.ANALYTICS_READ)]
CanExport = Annotated[Principal, requires(Permission.ANALYTICS_EXPORT)]
Exporting = Annotated[Acting, acting_with(Permission.ANALYTICS_EXPORT)]
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The rows as CSV, streamed.",
        "content": {"text/csv": {"schema": {"type": "string"}}},
    }
}


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


async def asked_figures(
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
) -> reading.Figures:
    return reading.Figures(
        scope=query.Scope(social_account_ids, [p.value for p in platforms] if platforms else None),
        metrics=metric,
        range=_range(relative, first, last),
        granularity=granularity,
        comparison=comparison,
    )


AskedFigures = Annotated[reading.Figures, Depends(asked_figures)]


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
    openapi_extra=BEARER_KEY,
)
async def view_data(
    secret_hash: KeyHash, view_id: ViewId, request: Request, kept: KeptAnswers
) -> Response:
    """The view's figures now: a series per metric, its total and the comparison's, from
    the daily snapshots (today's are made after tonight's midnight)."""
    # The key, the view and what its answer rests on in one round trip, without the
    # request transaction; the answer is kept until the snapshots change.
    state = request.app.state
    body = await reading.view_answer(state.db, state.clock, secret_hash, kept, view_id)
    return Response(body, media_type="application/json")


@router.get(
    "/query",
    response_model=AnalyticsData,
    responses=problem_responses(401, 403, 404, 422),
    openapi_extra=BEARER_KEY,
)
async def query_data(
    secret_hash: KeyHash, request: Request, asked: AskedFigures, kept: KeptAnswers
) -> Response:
    """Figures as a saved view would show them, without saving one."""
    state = request.app.state
    body = await reading.query_answer(state.db, state.clock, secret_hash, kept, asked)
    return Response(body, media_type="application/json")


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


def _csv(request: Request, principal: Principal, spec: exports.Spec) -> StreamingResponse:
    name = exports.file_name(spec, "csv")
    return StreamingResponse(
        exports.stream_csv(request.app.state.db, principal.workspace_id, spec),
        media_type=CONTENT_TYPES["csv"],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get(
    "/views/{view_id}/data.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE | problem_responses(401, 403, 404, 422),
)
async def view_csv(
    view_id: ViewId,
    principal: CanExport,
    session: DbSession,
    clock: RequestClock,
    request: Request,
) -> StreamingResponse:
    """The view's figures as CSV, streamed whatever their size: a row per account, metric
    and period (`period`, `social_account_id`, `platform`, `handle`, `account`, `metric`,
    `value`, and with a comparison `previous_period` and `previous_value`); periods with
    no figure are left out."""
    spec = await exports.view_spec(
        session, view_id, principal.workspace_timezone, _today(principal, clock)
    )
    await query.accounts(session, spec.scope)
    return _csv(request, principal, spec)


@router.get(
    "/query.csv",
    response_class=StreamingResponse,
    responses=CSV_RESPONSE | problem_responses(401, 403, 404, 422),
)
async def query_csv(
    principal: CanExport,
    session: DbSession,
    clock: RequestClock,
    request: Request,
    asked: AskedFigures,
) -> StreamingResponse:
    """The figures `GET /v1/analytics/query` shows, as CSV rows per account (as a view's
    `data.csv`), streamed."""
    spec = exports.query_spec(
        title="analytics",
        timezone=principal.workspace_timezone,
        today=_today(principal, clock),
        scope=asked.scope,
        metrics=asked.metrics,
        range_=asked.range,
        granularity=asked.granularity,
        comparison=asked.comparison,
    )
    await query.accounts(session, spec.scope)
    return _csv(request, principal, spec)


@router.post(
    "/exports",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=AnalyticsExport,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def create_export(
    data: AnalyticsExportCreate, acting: Exporting, idem: IdempotentRequest
) -> Response:
    """Ask the workers for a CSV, XLSX or PDF of a saved view (`view_id`) or of figures
    (`query`). It answers at once with the export, `queued`; poll it for its `progress`,
    or wait for the `analytics.export.ready` event, then download it from its
    `download_url`. A relative range is resolved to days now."""
    today = _today(acting.principal, acting.clock)

    async def make() -> AnalyticsExport:
        return exports.shown(await exports.create(acting, data, today))

    return respond(
        await idem.create(
            fingerprint("POST", "/v1/analytics/exports", data.model_dump(mode="json")),
            make,
            answer=lambda e: Recorded.of(202, e, {"Location": f"/v1/analytics/exports/{e.id}"}),
        )
    )


@router.get(
    "/exports", response_model=Page[AnalyticsExport], responses=problem_responses(401, 403, 422)
)
async def list_exports(
    _: CanExport, session: DbSession, page: Annotated[PageRequest, Depends(page_request)]
) -> Page[AnalyticsExport]:
    """The workspace's exports, the newest first (expired ones too, without their file)."""
    rows = await repository.exports(session, after=page.after, limit=page.limit + 1)
    items, cursor = make_page([exports.shown(e) for e in rows], page.limit, lambda e: e.id)
    return Page[AnalyticsExport](data=items, next_cursor=cursor)


@router.get(
    "/exports/{export_id}",
    response_model=AnalyticsExport,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_export(export_id: ExportId, _: CanExport, session: DbSession) -> AnalyticsExport:
    """One export: its status, progress and, once ready, its download link."""
    return exports.shown(await exports.get(session, export_id))


FILE_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The file.",
        "content": {
            kind: {"schema": {"type": "string", "format": "binary"}}
            for kind in sorted(set(CONTENT_TYPES.values()))
        },
    }
}


@router.get(
    "/exports/{export_id}/file",
    response_class=FileResponse,
    responses=FILE_RESPONSE | problem_responses(401, 403, 404, 409, 410, 422),
)
async def download_export(
    export_id: ExportId, _: CanExport, session: DbSession, request: Request
) -> FileResponse:
    """The export's file, while it is ready: `409 analytics-export-not-ready` before (or
    when it failed), `410 analytics-export-expired` once deleted."""
    export = await exports.get(session, export_id)
    path = exports.ready_file(export)
    storage = request.app.state.storage
    if not storage.exists(path):
        raise NotFound("The export's file is missing from storage.")
    return FileResponse(
        storage.local_path(path),
        media_type=CONTENT_TYPES[export.format],
        filename=export.file_name,
    )


@router.delete(
    "/exports/{export_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_export(export_id: ExportId, acting: Exporting, request: Request) -> Response:
    """Delete an export and its file; one being written stops."""
    await exports.delete(acting.session, request.app.state.storage, export_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
