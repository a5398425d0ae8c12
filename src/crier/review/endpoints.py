"""Reviews: the inbox's change feed, one review, and syncs on demand: `/v1/reviews`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Body, Depends, Header, Query, Request, Response, status
from pydantic import Field

from crier.auth.dependencies import acting_with, requires
from crier.auth.permissions import Permission
from crier.auth.principal import Acting, Principal
from crier.kit.body import JsonRoute
from crier.kit.concurrency import IF_MATCH_PATTERN, IfMatch, etag_of
from crier.kit.http import DbSession, RequestClock, problem_responses
from crier.kit.pagination import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    Page,
    PageRequest,
    make_page,
    page_request,
)
from crier.kit.time import Day, Timestamp
from crier.review import alerts, replies, repository, service, stats
from crier.review.schemas import (
    AlertRuleId,
    RenderedReply,
    ReplyRequest,
    Review,
    ReviewAlertRule,
    ReviewAlertRuleCreate,
    ReviewAlertRuleUpdate,
    ReviewDetail,
    ReviewFeedPage,
    ReviewId,
    ReviewStats,
    ReviewSyncRequest,
    ReviewSyncs,
    ReviewTemplate,
    ReviewTemplateCreate,
    ReviewTemplatePreview,
    ReviewTemplateUpdate,
    SentimentLabel,
    TemplateId,
)
from crier.social_account import repository as account_repository

router = APIRouter(prefix="/reviews", tags=["Reviews"], route_class=JsonRoute)
templates_router = APIRouter(prefix="/review-templates", tags=["Reviews"], route_class=JsonRoute)
CanRead = Annotated[Principal, requires(Permission.REVIEWS_READ)]
Replying = Annotated[Acting, acting_with(Permission.REVIEWS_REPLY)]
Stars = Annotated[int, Field(ge=1, le=5)]
# Required, but its absence answers 428 `precondition-required`, not 422 (see crier.app).
IfMatchHeader = Annotated[
    str,
    Header(
        alias="If-Match",
        pattern=IF_MATCH_PATTERN,
        description="The ETag of your last read of the review: without it (or empty) 428, "
        "stale 412, malformed 422.",
    ),
]
_REPLY_ERRORS = problem_responses(401, 403, 404, 409, 412, 422, 428)


@router.get("", response_model=ReviewFeedPage, responses=problem_responses(401, 403, 422))
async def list_reviews(
    _: CanRead,
    session: DbSession,
    cursor: Annotated[
        str | None,
        Query(
            description="`next_cursor` of the previous call; from the beginning without it.",
            pattern=service.FEED_CURSOR_PATTERN,
        ),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Reviews per page, at most 100.")
    ] = DEFAULT_LIMIT,
    social_account_id: Annotated[
        UUID | None, Query(description="Only this location's reviews.")
    ] = None,
    rating: Annotated[
        list[Stars] | None, Query(description="Only these ratings, 1 to 5 (repeatable).")
    ] = None,
    sentiment: Annotated[
        SentimentLabel | None, Query(description="Only reviews with this sentiment label.")
    ] = None,
    responded: Annotated[
        bool | None, Query(description="Only reviews answered (true) or not (false).")
    ] = None,
    removed: Annotated[
        bool | None, Query(description="Only reviews removed from the network, or not.")
    ] = None,
    reviewed_from: Annotated[
        Timestamp | None, Query(description="Only reviews written at or after this instant.")
    ] = None,
    reviewed_to: Annotated[
        Timestamp | None, Query(description="Only reviews written before this instant.")
    ] = None,
) -> ReviewFeedPage:
    """The workspace's reviews as a change feed: each review, as it is now, in the order its
    latest change committed (a new review, an edit, a reply, a removal). Follow
    `next_cursor` and you see every change once and miss none, even those committing while
    you page: store the last `next_cursor` and ask again later for what changed since."""
    filters = repository.FeedFilters(
        social_account_id=social_account_id,
        ratings=rating or (),
        sentiment=sentiment.value if sentiment else None,
        responded=responded,
        removed=removed,
        reviewed_from=reviewed_from,
        reviewed_to=reviewed_to,
    )
    after = service.decode_feed_cursor(cursor) if cursor else 0
    rows, following, more = await service.feed(session, after, filters, limit)
    return ReviewFeedPage(
        data=[service.review_out(r) for r in rows],
        next_cursor=service.encode_feed_cursor(following),
        has_more=more,
    )


@router.get("/sync", response_model=ReviewSyncs, responses=problem_responses(401, 403))
async def list_syncs(_: CanRead, session: DbSession) -> ReviewSyncs:
    """Where each location's review sync stands: when it last finished, when it is next
    due, and the error of the last run that failed."""
    return ReviewSyncs(data=[service.sync_state(s) for s in await repository.syncs(session)])


@router.post(
    "/sync",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ReviewSyncs,
    responses=problem_responses(401, 403, 404, 422),
)
async def request_sync(
    principal: CanRead,
    session: DbSession,
    request: Request,
    clock: RequestClock,
    data: Annotated[ReviewSyncRequest | None, Body()] = None,
) -> ReviewSyncs:
    """Sync a location's reviews now (every location's without `social_account_id`),
    rather than at its next turn (every 15 minutes by default): a worker takes it within
    seconds. Answers the syncs asked for; `GET /v1/reviews/sync` shows when they finish."""
    account_id = data.social_account_id if data else None
    syncs = await service.request_sync(
        session, request.app.state.platforms, clock, principal.workspace_id, account_id
    )
    return ReviewSyncs(data=[service.sync_state(s) for s in syncs])


@router.get("/stats", response_model=ReviewStats, responses=problem_responses(401, 403, 404, 422))
async def review_stats(
    principal: CanRead,
    session: DbSession,
    clock: RequestClock,
    first: Annotated[
        Day | None,
        Query(
            alias="from",
            description="The first day counted, in the workspace's timezone; 89 days before "
            "`to` without it.",
        ),
    ] = None,
    last: Annotated[
        Day | None,
        Query(
            alias="to",
            description="The last day counted (included); today in the workspace's timezone "
            "without it. A range is at most 731 days.",
        ),
    ] = None,
    social_account_id: Annotated[
        UUID | None, Query(description="Only this location (Crier's id of its account).")
    ] = None,
    location_id: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=500,
            description="Only this location, by its id on the network (a review's `location_id`).",
        ),
    ] = None,
) -> ReviewStats:
    """How the reviews written in a range of days went: how many, their mean rating and how
    many gave each, how many were answered and the median time to answer, and their
    sentiment week by week (from Monday). Days and weeks are the workspace's timezone's;
    removed reviews are left out."""
    timezone = principal.workspace_timezone
    today = clock.now().astimezone(ZoneInfo(timezone)).date()
    scope = stats.Scope(social_account_id=social_account_id, location_id=location_id)
    return await stats.stats(session, timezone, today, first, last, scope)


@router.get(
    "/{review_id}", response_model=ReviewDetail, responses=problem_responses(401, 403, 404, 422)
)
async def get_review(
    review_id: ReviewId, _: CanRead, session: DbSession, response: Response
) -> ReviewDetail:
    """One review, with the reply the network shows and the reply history (replies asked
    through Crier and those seen made on the network). Its `ETag` header is what
    `If-Match` must carry to reply."""
    review = await service.get(session, review_id)
    response.headers["ETag"] = etag_of(review.feed_sequence)
    return await replies.detail(session, review)


async def _ask(
    acting: Acting,
    request: Request,
    response: Response,
    review_id: UUID,
    if_match: str,
    asked: ReplyRequest | None,
) -> Review:
    """Ask for the reply (`asked`) or its removal (None); the review, with its new ETag."""
    review = await replies.request(
        acting.session,
        request.app.state.platforms,
        acting.clock,
        acting.principal,
        review_id,
        IfMatch.parse(if_match),
        asked,
    )
    response.headers["ETag"] = etag_of(review.feed_sequence)
    return service.review_out(review)


@router.put(
    "/{review_id}/reply",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Review,
    responses=_REPLY_ERRORS,
)
async def put_reply(
    review_id: ReviewId,
    data: Annotated[ReplyRequest, Body(title="ReplyRequest")],
    acting: Replying,
    request: Request,
    response: Response,
    if_match: IfMatchHeader,
) -> Review:
    """Reply to the review as the business, or replace its reply: with `text`, or a
    `template_id` filled from the review. Accepted at once (`reply_status: pending`) and
    sent by a worker within seconds, retried on transient failures; `review.replied` when
    the network confirms it (with `responded_at`), `review.reply_failed` if it fails for
    good. A reply asked earlier and not yet sent is replaced. Requires `If-Match`; a
    removed review is `review-removed`, an expired or disconnected location
    `location-unavailable`."""
    return await _ask(acting, request, response, review_id, if_match, data)


@router.delete(
    "/{review_id}/reply",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Review,
    responses=_REPLY_ERRORS,
)
async def delete_reply(
    review_id: ReviewId,
    acting: Replying,
    request: Request,
    response: Response,
    if_match: IfMatchHeader,
) -> Review:
    """Remove the business's reply from the network, as `PUT` makes one (accepted at once,
    sent by a worker, `review.updated` when done). Requires `If-Match`."""
    return await _ask(acting, request, response, review_id, if_match, None)


@templates_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewTemplate,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_template(
    data: ReviewTemplateCreate, acting: Replying, response: Response
) -> ReviewTemplate:
    """Add a reply template. Placeholders `{reviewer_name}`, `{location_name}` and
    `{rating}` are filled from the review replied to; `{reviewer_name|there}` gives the
    text to use where a review has no such value. An unknown placeholder or a lone brace
    is refused (`{{` and `}}` are braces)."""
    template = await replies.create_template(acting.session, acting.principal.workspace_id, data)
    response.headers["Location"] = f"/v1/review-templates/{template.id}"
    return ReviewTemplate.model_validate(template)


@templates_router.get(
    "", response_model=Page[ReviewTemplate], responses=problem_responses(401, 403, 422)
)
async def list_templates(
    _: CanRead, session: DbSession, page: Annotated[PageRequest, Depends(page_request)]
) -> Page[ReviewTemplate]:
    """The workspace's reply templates, oldest first."""
    rows = await replies.list_templates(session, page.after, page.limit + 1)
    items, cursor = make_page(
        [ReviewTemplate.model_validate(r) for r in rows], page.limit, lambda t: t.id
    )
    return Page[ReviewTemplate](data=items, next_cursor=cursor)


@templates_router.get(
    "/{template_id}", response_model=ReviewTemplate, responses=problem_responses(401, 403, 404, 422)
)
async def get_template(template_id: TemplateId, _: CanRead, session: DbSession) -> ReviewTemplate:
    """One reply template."""
    return ReviewTemplate.model_validate(await replies.get_template(session, template_id))


@templates_router.patch(
    "/{template_id}",
    response_model=ReviewTemplate,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_template(
    template_id: TemplateId, data: ReviewTemplateUpdate, acting: Replying
) -> ReviewTemplate:
    """Rename a template or change its text (replies already asked keep theirs)."""
    template = await replies.update_template(acting.session, acting.clock, template_id, data)
    return ReviewTemplate.model_validate(template)


@templates_router.delete(
    "/{template_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_template(template_id: TemplateId, acting: Replying) -> Response:
    """Delete a template (replies made from it keep their text and its id)."""
    await replies.delete_template(acting.session, template_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@templates_router.post(
    "/{template_id}/preview",
    response_model=RenderedReply,
    responses=problem_responses(401, 403, 404, 422),
)
async def preview_template(
    template_id: TemplateId, data: ReviewTemplatePreview, _: CanRead, session: DbSession
) -> RenderedReply:
    """The template filled from a review, as a reply to it would be sent (nothing is
    sent)."""
    template = await replies.get_template(session, template_id)
    review = await service.get(session, data.review_id)
    account = await account_repository.get(session, review.social_account_id)
    assert account is not None
    return RenderedReply(text=replies.fill(template, review, account))


alerts_router = APIRouter(prefix="/review-alert-rules", tags=["Reviews"], route_class=JsonRoute)


@alerts_router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ReviewAlertRule,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_alert_rule(
    data: ReviewAlertRuleCreate, acting: Replying, response: Response
) -> ReviewAlertRule:
    """Add an alert rule: a review that meets all its conditions (`max_rating`: at most
    so many stars; `sentiment_below`: a sentiment under this), on its locations (all, if
    none are named), raises `review.alert` once. Only reviews written or changed on the
    network from now on are looked at."""
    rule = await alerts.create_rule(
        acting.session, acting.clock, acting.principal.workspace_id, data
    )
    response.headers["Location"] = f"/v1/review-alert-rules/{rule.id}"
    return ReviewAlertRule.model_validate(rule)


@alerts_router.get(
    "", response_model=Page[ReviewAlertRule], responses=problem_responses(401, 403, 422)
)
async def list_alert_rules(
    _: CanRead, session: DbSession, page: Annotated[PageRequest, Depends(page_request)]
) -> Page[ReviewAlertRule]:
    """The workspace's alert rules, oldest first."""
    rows = await repository.alert_rules(session, after=page.after, limit=page.limit + 1)
    items, cursor = make_page(
        [ReviewAlertRule.model_validate(r) for r in rows], page.limit, lambda r: r.id
    )
    return Page[ReviewAlertRule](data=items, next_cursor=cursor)


@alerts_router.get(
    "/{rule_id}", response_model=ReviewAlertRule, responses=problem_responses(401, 403, 404, 422)
)
async def get_alert_rule(rule_id: AlertRuleId, _: CanRead, session: DbSession) -> ReviewAlertRule:
    """One alert rule."""
    return ReviewAlertRule.model_validate(await alerts.get_rule(session, rule_id))


@alerts_router.patch(
    "/{rule_id}",
    response_model=ReviewAlertRule,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def update_alert_rule(
    rule_id: AlertRuleId, data: ReviewAlertRuleUpdate, acting: Replying
) -> ReviewAlertRule:
    """Change a rule (alerts already raised stay raised)."""
    rule = await alerts.update_rule(acting.session, acting.clock, rule_id, data)
    return ReviewAlertRule.model_validate(rule)


@alerts_router.delete(
    "/{rule_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_alert_rule(rule_id: AlertRuleId, acting: Replying) -> Response:
    """Delete a rule; it raises no more alerts."""
    await alerts.delete_rule(acting.session, rule_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
