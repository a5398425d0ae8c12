"""Webhook endpoints, their deliveries, and events: `/v1/webhook-endpoints`,
`/v1/webhook-events`, `/v1/webhook-event-types`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response, status

from crier.auth.dependencies import CurrentPrincipal, IdempotentRequest, requires
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.body import JsonRoute
from crier.kit.http import DbSession, RequestClock, problem_responses, respond
from crier.kit.idempotency import Recorded, fingerprint
from crier.kit.outbound import Guard
from crier.kit.pagination import Page, PageRequest, make_page, page_request
from crier.webhook import service
from crier.webhook.events import DESCRIPTIONS
from crier.webhook.schemas import (
    EndpointId,
    EventId,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEndpointCreate,
    WebhookEndpointUpdate,
    WebhookEndpointWithSecret,
    WebhookEvent,
    WebhookEventType,
    WebhookReplay,
    WebhookSent,
)

router = APIRouter(tags=["Webhooks"], route_class=JsonRoute)
CanManage = Annotated[Principal, requires(Permission.WEBHOOKS_MANAGE)]


def _guard(request: Request) -> Guard:
    guard: Guard = request.app.state.webhook_guard
    return guard


@router.get(
    "/webhook-event-types",
    response_model=Page[WebhookEventType],
    responses=problem_responses(401),
)
async def list_event_types(_: CurrentPrincipal) -> Page[WebhookEventType]:
    """Every event type, with what its `data` holds (also in docs/webhooks.md), on one page."""
    types = [WebhookEventType(type=t, description=d) for t, d in DESCRIPTIONS.items()]
    return Page(data=types, next_cursor=None)


@router.post(
    "/webhook-endpoints",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookEndpointWithSecret,
    responses=problem_responses(401, 403, 409, 422),
)
async def create_endpoint(
    data: WebhookEndpointCreate,
    principal: CanManage,
    session: DbSession,
    request: Request,
    idem: IdempotentRequest,
) -> Response:
    """Add an endpoint. Its signing `secret` is in this response only: keep it to verify
    the `webhook-signature` of every call (Standard Webhooks)."""
    return respond(
        await idem.create(
            fingerprint("POST", "/v1/webhook-endpoints", data.model_dump(mode="json")),
            lambda: service.create(
                session, request.app.state.vault, _guard(request), principal.workspace_id, data
            ),
            answer=lambda e: Recorded.of(201, e, {"Location": f"/v1/webhook-endpoints/{e.id}"}),
        )
    )


@router.get(
    "/webhook-endpoints",
    response_model=Page[WebhookEndpoint],
    responses=problem_responses(401, 403, 422),
)
async def list_endpoints(
    _: CanManage, session: DbSession, page: Annotated[PageRequest, Depends(page_request)]
) -> Page[WebhookEndpoint]:
    """The workspace's endpoints, oldest first (never their secrets)."""
    rows = await service.list_endpoints(session, page.after, page.limit + 1)
    items, cursor = make_page(
        [WebhookEndpoint.model_validate(r) for r in rows], page.limit, lambda e: e.id
    )
    return Page[WebhookEndpoint](data=items, next_cursor=cursor)


@router.get(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpoint,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_endpoint(
    endpoint_id: EndpointId, _: CanManage, session: DbSession
) -> WebhookEndpoint:
    """An endpoint; if it was disabled, `disabled_reason` says why."""
    return WebhookEndpoint.model_validate(await service.get(session, endpoint_id))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    response_model=WebhookEndpoint,
    responses=problem_responses(401, 403, 404, 422),
)
async def update_endpoint(
    endpoint_id: EndpointId,
    data: WebhookEndpointUpdate,
    _: CanManage,
    session: DbSession,
    clock: RequestClock,
    request: Request,
) -> WebhookEndpoint:
    """Change the URL, event types, description; `enabled: true` re-enables a disabled
    endpoint (its pending deliveries resume)."""
    endpoint = await service.update(session, _guard(request), endpoint_id, data, clock.now())
    return WebhookEndpoint.model_validate(endpoint)


@router.delete(
    "/webhook-endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 422),
)
async def delete_endpoint(endpoint_id: EndpointId, _: CanManage, session: DbSession) -> Response:
    """Delete an endpoint; nothing more is sent to it."""
    await service.delete(session, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=WebhookEndpointWithSecret,
    responses=problem_responses(401, 403, 404, 422),
)
async def rotate_secret(
    endpoint_id: EndpointId,
    _: CanManage,
    session: DbSession,
    clock: RequestClock,
    request: Request,
) -> WebhookEndpointWithSecret:
    """A new signing secret, shown once. For 24 hours, calls carry two signatures (new and
    old secret) so receivers can switch without missing a call."""
    return await service.rotate_secret(session, request.app.state.vault, endpoint_id, clock.now())


@router.post(
    "/webhook-endpoints/{endpoint_id}/test",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookSent,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def send_test(
    endpoint_id: EndpointId, _: CanManage, session: DbSession, clock: RequestClock
) -> WebhookSent:
    """Queue a `webhook.test` event for this endpoint only."""
    return await service.send_test(session, endpoint_id, clock.now())


@router.get(
    "/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=Page[WebhookDelivery],
    responses=problem_responses(401, 403, 404, 422),
)
async def list_deliveries(
    endpoint_id: EndpointId,
    _: CanManage,
    session: DbSession,
    page: Annotated[PageRequest, Depends(page_request)],
) -> Page[WebhookDelivery]:
    """What was sent to the endpoint, newest first: each event's status, every attempt
    (response code, duration, error) and when the next retry is due."""
    rows = await service.deliveries_of(session, endpoint_id, page.after, page.limit + 1)
    items, cursor = make_page(rows, page.limit, lambda d: d.id)
    return Page[WebhookDelivery](data=items, next_cursor=cursor)


@router.get(
    "/webhook-events/{event_id}",
    response_model=WebhookEvent,
    responses=problem_responses(401, 403, 404, 422),
)
async def get_event(event_id: EventId, _: CanManage, session: DbSession) -> WebhookEvent:
    """An event and exactly the payload its deliveries carry."""
    return await service.get_event(session, event_id)


@router.post(
    "/webhook-events/{event_id}/replay",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=WebhookSent,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def replay_event(
    event_id: EventId,
    _: CanManage,
    session: DbSession,
    clock: RequestClock,
    data: Annotated[WebhookReplay | None, Body()] = None,
) -> WebhookSent:
    """Send an event again, with the same `webhook-id` and payload: to one endpoint, or to
    every (enabled) endpoint it was sent to."""
    endpoint_id = data.endpoint_id if data else None
    return await service.replay(session, event_id, endpoint_id, clock.now())
