"""Posts: create, read, edit, schedule, unschedule, cancel, delete."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status

from crier.auth.dependencies import BEARER_KEY, IdempotencyKey, acting_with, key_hash, requires
from crier.auth.permissions import Permission
from crier.auth.principal import Acting, Principal
from crier.delivery import service as delivery_service
from crier.delivery.schemas import DeliveryList
from crier.kit.body import JsonRoute
from crier.kit.concurrency import IF_MATCH_PATTERN, IfMatch, etag_of
from crier.kit.http import DbSession, problem_responses, respond
from crier.kit.idempotency import Recorded
from crier.kit.pagination import Page, PageRequest, make_page, page_request
from crier.kit.time import Timestamp
from crier.post import service
from crier.post.lifecycle import PostStatus
from crier.post.repository import PostFilter
from crier.post.schemas import (
    Post,
    PostCreate,
    PostId,
    PostUpdate,
    ScheduleRequest,
)

router = APIRouter(prefix="/posts", tags=["Posts"], route_class=JsonRoute)

CanRead = Annotated[Principal, requires(Permission.POSTS_READ)]
Reading = Annotated[Acting, acting_with(Permission.POSTS_READ)]
Writing = Annotated[Acting, acting_with(Permission.POSTS_WRITE)]
Scheduling = Annotated[Acting, acting_with(Permission.POSTS_SCHEDULE)]
Deleting = Annotated[Acting, acting_with(Permission.POSTS_DELETE)]
# Required, but its absence answers 428 `precondition-required`, not 422 (see crier.app).
IfMatchHeader = Annotated[
    str,
    Header(
        alias="If-Match",
        pattern=IF_MATCH_PATTERN,
        description="The ETag of your last read of the post: without it (or empty) 428, "
        "stale 412, malformed 422.",
    ),
]
OptionalIfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=IF_MATCH_PATTERN,
        description="Optional: act only if the post is at this ETag (stale 412, empty 428, "
        "malformed 422).",
    ),
]
# The errors a change to an existing post can meet, beyond authentication.
_CHANGE_ERRORS = problem_responses(401, 403, 404, 409, 412, 422, 428)


def _with_etag(response: Response, post: Post) -> Post:
    response.headers["ETag"] = etag_of(post.version)
    return post


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Post,
    responses=problem_responses(401, 403, 409, 422),
    openapi_extra=BEARER_KEY,
)
async def create_post(data: PostCreate, request: Request, key: IdempotencyKey = None) -> Response:
    """Create a post: a `draft` (the default) or, with `publish_at`, a `scheduled` one
    (needs `posts:schedule`, and every target must be publishable).

    Send an `Idempotency-Key` to make retries safe. `publish_at` must carry an explicit
    offset; if that offset is not the post's timezone's at that instant (a DST slip), the
    post is still scheduled for the exact instant sent, and `warnings` says so.
    """
    # Authenticates by itself, in the two round trips the create takes.
    state = request.app.state
    created = await service.create_post(
        state.db, state.vault, state.clock, key_hash(request), key, data, _created, state.platforms
    )
    return respond(created)


def _created(post: Post) -> Recorded:
    headers = {"ETag": etag_of(post.version), "Location": f"/v1/posts/{post.id}"}
    return Recorded.of(status.HTTP_201_CREATED, post, headers)


@router.get("", response_model=Page[Post], responses=problem_responses(401, 403, 422))
async def list_posts(
    acting: Reading,
    page: Annotated[PageRequest, Depends(page_request)],
    status_: Annotated[
        list[PostStatus] | None,
        Query(alias="status", description="Only posts in these statuses (repeatable)."),
    ] = None,
    publish_after: Annotated[
        Timestamp | None, Query(description="Only posts publishing at or after this instant.")
    ] = None,
    publish_before: Annotated[
        Timestamp | None, Query(description="Only posts publishing before this instant.")
    ] = None,
    social_account_id: Annotated[
        UUID | None, Query(description="Only posts targeting this social account.")
    ] = None,
) -> Page[Post]:
    """Posts in creation order, filtered; `next_cursor` pages through them."""
    shown = PostFilter(
        statuses=[s.value for s in status_ or []],
        publish_after=publish_after,
        publish_before=publish_before,
        social_account_id=social_account_id,
    )
    rows = await service.list_posts(acting, shown, page.after, page.limit + 1)
    items, cursor = make_page(rows, page.limit, lambda p: p.id)
    return Page[Post](data=items, next_cursor=cursor)


@router.get(
    "/{post_id}",
    response_model=Post,
    responses=problem_responses(401, 403, 404, 422),
    openapi_extra=BEARER_KEY,
)
async def get_post(post_id: PostId, request: Request) -> Response:
    """One post. Its `ETag` header is what `If-Match` must carry to change it."""
    # Reads the key and the post in one round trip, without the request transaction.
    state = request.app.state
    post = await service.read_post(state.db, state.clock, key_hash(request), post_id)
    return Response(
        post.model_dump_json(),
        media_type="application/json",
        headers={"ETag": etag_of(post.version)},
    )


@router.patch("/{post_id}", response_model=Post, responses=_CHANGE_ERRORS)
async def update_post(
    post_id: PostId,
    data: PostUpdate,
    acting: Writing,
    request: Request,
    response: Response,
    if_match: IfMatchHeader,
) -> Post:
    """Change a draft, or a scheduled post (needs `posts:schedule`), until 5 minutes
    before it publishes (`post-locked` after). Requires `If-Match`."""
    post = await service.update_post(
        acting, post_id, data, IfMatch.parse(if_match), request.app.state.platforms
    )
    return _with_etag(response, post)


@router.post("/{post_id}/schedule", response_model=Post, responses=_CHANGE_ERRORS)
async def schedule_post(
    post_id: PostId,
    acting: Scheduling,
    request: Request,
    response: Response,
    if_match: IfMatchHeader,
    data: ScheduleRequest | None = None,
) -> Post:
    """Schedule a draft, or reschedule a scheduled post, optionally with a new
    `publish_at`/`timezone`. Every target is checked; all failures come in one
    `target-validation-failed`. Requires `If-Match`."""
    expected = IfMatch.parse(if_match)
    post = await service.schedule_post(
        acting, post_id, data or ScheduleRequest(), expected, request.app.state.platforms
    )
    return _with_etag(response, post)


@router.post("/{post_id}/unschedule", response_model=Post, responses=_CHANGE_ERRORS)
async def unschedule_post(
    post_id: PostId, acting: Scheduling, response: Response, if_match: IfMatchHeader
) -> Post:
    """Take a scheduled post back to draft (not within 5 minutes of publishing). Requires
    `If-Match`."""
    post = await service.unschedule_post(acting, post_id, IfMatch.parse(if_match))
    return _with_etag(response, post)


@router.post("/{post_id}/cancel", response_model=Post, responses=_CHANGE_ERRORS)
async def cancel_post(
    post_id: PostId, acting: Scheduling, response: Response, if_match: OptionalIfMatch = None
) -> Post:
    """Cancel a post until publishing begins, even in its last minutes (then
    `post-not-cancellable`). It leaves the queue at once; who cancelled it and when is
    recorded; its media are released."""
    post = await service.cancel_post(acting, post_id, IfMatch.parse(if_match))
    return _with_etag(response, post)


@router.post("/{post_id}/retry", response_model=Post, responses=_CHANGE_ERRORS)
async def retry_post(
    post_id: PostId, acting: Scheduling, response: Response, if_match: OptionalIfMatch = None
) -> Post:
    """Re-send only the failed targets of a failed post, now (`post-not-retryable`
    otherwise). Published targets are not sent again."""
    post = await service.retry_post(acting, post_id, IfMatch.parse(if_match))
    return _with_etag(response, post)


@router.delete("/{post_id}", status_code=status.HTTP_204_NO_CONTENT, responses=_CHANGE_ERRORS)
async def delete_post(post_id: PostId, acting: Deleting, if_match: IfMatchHeader) -> Response:
    """Delete a draft (`post-not-deletable` otherwise). Requires `If-Match`."""
    await service.delete_post(acting, post_id, IfMatch.parse(if_match))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{post_id}/deliveries",
    response_model=DeliveryList,
    responses=problem_responses(401, 403, 404, 422),
)
async def list_deliveries(post_id: PostId, _: CanRead, session: DbSession) -> DeliveryList:
    """One delivery per target, with every attempt, once the scheduler has begun sending
    the post; empty before that."""
    await service.ensure_exists(session, post_id)
    return await delivery_service.list_for_post(session, post_id)
