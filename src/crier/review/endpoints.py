"""Reviews: the inbox's change feed, one review, and syncs on demand: `/v1/reviews`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Body, Query, Request, status
from pydantic import Field

from crier.auth.dependencies import requires
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.body import JsonRoute
from crier.kit.http import DbSession, RequestClock, problem_responses
from crier.kit.pagination import DEFAULT_LIMIT, MAX_LIMIT
from crier.kit.time import Timestamp
from crier.review import repository, service
from crier.review.schemas import (
    Review,
    ReviewFeedPage,
    ReviewId,
    ReviewSyncRequest,
    ReviewSyncs,
    SentimentLabel,
)

router = APIRouter(prefix="/reviews", tags=["Reviews"], route_class=JsonRoute)
CanRead = Annotated[Principal, requires(Permission.REVIEWS_READ)]
Stars = Annotated[int, Field(ge=1, le=5)]


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


@router.get("/{review_id}", response_model=Review, responses=problem_responses(401, 403, 404, 422))
async def get_review(review_id: ReviewId, _: CanRead, session: DbSession) -> Review:
    """One review, with the reply the network shows."""
    return service.review_out(await service.get(session, review_id))
