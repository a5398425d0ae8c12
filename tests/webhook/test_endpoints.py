"""The webhook endpoints API: secrets shown once, validation, permissions, tenancy."""

from __future__ import annotations

import re
from uuid import UUID

import pytest
from sqlalchemy import select

from crier.kit.db import Database
from crier.models import WebhookEndpoint
from tests.conftest import Tenant, assert_problem
from tests.webhook.conftest import add_endpoint

URL = "https://hooks.example.com/crier"


def calls_on(endpoint_id: str) -> list[tuple[str, str]]:
    """Every call on one endpoint."""
    path = f"/v1/webhook-endpoints/{endpoint_id}"
    return [
        ("GET", path),
        ("PATCH", path),
        ("DELETE", path),
        ("POST", f"{path}/rotate-secret"),
        ("POST", f"{path}/test"),
        ("GET", f"{path}/deliveries"),
    ]


async def test_the_secret_is_shown_once_and_stored_sealed(tenant: Tenant, db: Database) -> None:
    created = await add_endpoint(tenant, URL, description="CRM sync")
    assert created["secret"].startswith("whsec_")
    assert created["event_types"] is None
    assert created["enabled"] is True
    shown = await tenant.get(f"/v1/webhook-endpoints/{created['id']}")
    assert shown.status_code == 200
    assert "secret" not in shown.json()
    listed = (await tenant.get("/v1/webhook-endpoints")).json()["data"]
    assert [e["id"] for e in listed] == [created["id"]]
    assert "secret" not in listed[0]
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        stored = (await session.execute(select(WebhookEndpoint.secret))).scalar_one()
    assert created["secret"].encode() not in stored


async def test_an_idempotent_create_makes_one_endpoint(tenant: Tenant) -> None:
    headers = {**tenant.auth, "Idempotency-Key": "hook-1"}
    path = "/v1/webhook-endpoints"
    first = await tenant.http.post(path, json={"url": URL}, headers=headers)
    again = await tenant.http.post(path, json={"url": URL}, headers=headers)
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len((await tenant.get("/v1/webhook-endpoints")).json()["data"]) == 1


async def test_update_and_delete(tenant: Tenant) -> None:
    created = await add_endpoint(tenant, URL)
    path = f"/v1/webhook-endpoints/{created['id']}"
    changed = await tenant.patch(
        path, json={"event_types": ["post.published", "post.failed"], "enabled": False}
    )
    assert changed.status_code == 200
    body = changed.json()
    assert body["event_types"] == ["post.failed", "post.published"]
    assert body["enabled"] is False
    assert body["disabled_reason"] == "disabled by a member"
    back = (await tenant.patch(path, json={"enabled": True, "event_types": None})).json()
    assert (back["enabled"], back["disabled_reason"], back["event_types"]) == (True, None, None)
    assert (await tenant.delete(path)).status_code == 204
    assert_problem(await tenant.get(path), 404, "not-found")
    assert_problem(await tenant.delete(path), 404, "not-found")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/x"}, "url"),
        ({"url": "not a url"}, "url"),
        ({"url": "https://user:pw@example.com/x"}, "url"),
        ({"url": "https://example.com/" + "x" * 2100}, "url"),
        ({"url": URL, "event_types": []}, "event_types"),
        ({"url": URL, "event_types": ["post.exploded"]}, "event_types"),
        ({"url": URL, "secret": "mine"}, "secret"),
        ({"url": URL, "enabled": 0}, "enabled"),
        ({"url": URL, "enabled": "yes"}, "enabled"),
        ({"url": "https://example.com/x#part"}, "url"),
    ],
)
async def test_bad_endpoints_are_422(tenant: Tenant, body: dict[str, object], field: str) -> None:
    problem = assert_problem(
        await tenant.post("/v1/webhook-endpoints", json=body), 422, "validation-error"
    )
    assert any(field in e["loc"] for e in problem["errors"])  # type: ignore[attr-defined]


async def test_the_documented_url_pattern_is_the_rule_applied(tenant: Tenant) -> None:
    """What the OpenAPI pattern admits is accepted, and what it refuses is refused."""
    schema = (await tenant.http.get("/openapi.json")).json()
    create = schema["components"]["schemas"]["WebhookEndpointCreate"]["properties"]["url"]
    pattern = re.compile(create["pattern"])
    for url in (
        "https://hooks.example.com/crier?x=1",
        "http://hooks.example.com:8443/a;b=c",
        "https://hooks.example.com/crier#frag",
        "https://me@hooks.example.com/",
        "https://hooks.example.com:65536/",
        "gopher://hooks.example.com/",
    ):
        answer = await tenant.post("/v1/webhook-endpoints", json={"url": url})
        assert (answer.status_code == 201) == bool(pattern.match(url)), (url, answer.text)


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.5/hooks",
        "http://192.168.1.1/hooks",
        "http://169.254.169.254/latest/meta-data",
        "http://[fd00:ec2::254]/hooks",
        "http://[::ffff:10.1.2.3]/hooks",
        "http://100.100.100.200/hooks",
        "http://0.0.0.0/hooks",
    ],
)
async def test_private_and_metadata_addresses_are_refused_on_create(
    tenant: Tenant, url: str
) -> None:
    response = await tenant.post("/v1/webhook-endpoints", json={"url": url})
    assert_problem(response, 422, "webhook-destination-refused")
    assert (await tenant.get("/v1/webhook-endpoints")).json()["data"] == []


async def test_a_private_address_is_refused_on_update(tenant: Tenant) -> None:
    created = await add_endpoint(tenant, URL)
    path = f"/v1/webhook-endpoints/{created['id']}"
    response = await tenant.patch(path, json={"url": "http://172.16.0.1/x"})
    assert_problem(response, 422, "webhook-destination-refused")
    assert (await tenant.get(path)).json()["url"] == URL


async def test_only_webhook_managers_may_touch_endpoints(tenant: Tenant) -> None:
    created = await add_endpoint(tenant, URL)
    editor = await tenant.member_with_key("editor")
    listing = [("GET", "/v1/webhook-endpoints"), ("POST", "/v1/webhook-endpoints")]
    for method, path in listing + calls_on(created["id"]):
        response = await editor.http.request(
            method, path, headers=editor.auth, json={"url": URL} if method != "GET" else None
        )
        assert_problem(response, 403, "permission-denied")


async def test_another_workspaces_endpoints_answer_404(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    created = await add_endpoint(tenant, URL)
    for method, path in calls_on(created["id"]):
        response = await other_tenant.http.request(
            method, path, headers=other_tenant.auth, json={} if method != "GET" else None
        )
        assert_problem(response, 404, "not-found")
    assert (await other_tenant.get("/v1/webhook-endpoints")).json()["data"] == []
    assert (await tenant.get(f"/v1/webhook-endpoints/{created['id']}")).status_code == 200


async def test_a_disabled_endpoint_cannot_be_tested(tenant: Tenant) -> None:
    created = await add_endpoint(tenant, URL, enabled=False)
    response = await tenant.post(f"/v1/webhook-endpoints/{created['id']}/test")
    assert_problem(response, 409, "webhook-endpoint-disabled")


async def test_unknown_events_answer_404(tenant: Tenant) -> None:
    missing = "01a2253b-7e2a-71dc-8296-4e6a546bf4f5"
    assert_problem(await tenant.get(f"/v1/webhook-events/{missing}"), 404, "not-found")
    assert_problem(await tenant.post(f"/v1/webhook-events/{missing}/replay"), 404, "not-found")
    assert_problem(await tenant.get("/v1/webhook-events/nope"), 422, "validation-error")


async def test_the_event_catalogue_is_listed(tenant: Tenant) -> None:
    listed = (await tenant.get("/v1/webhook-event-types")).json()
    assert listed["next_cursor"] is None
    types = {t["type"] for t in listed["data"]}
    assert {
        "post.scheduled",
        "post.queued",
        "post.published",
        "post.failed",
        "post.cancelled",
        "post.delivery.published",
        "post.delivery.failed",
        "social_account.expired",
        "media.deleted",
    } <= types


def test_every_event_type_is_documented_for_users() -> None:
    from pathlib import Path

    from crier.webhook.events import DESCRIPTIONS, EventType

    text = (Path(__file__).parents[2] / "docs" / "webhooks.md").read_text()
    assert set(DESCRIPTIONS) == set(EventType)
    for type_ in EventType:
        assert f"| `{type_}` |" in text, type_
