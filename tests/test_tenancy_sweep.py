"""Every route, probed from another workspace: its ids answer exactly like missing ones.

The routes come from the app's own OpenAPI description, so a route added later is swept
too; a route whose id this test cannot supply fails the test until it is taught one.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from crier.kit.db import Database
from crier.kit.ids import new_id
from crier.kit.time import SystemClock
from crier.models import OAuthGrant, SocialAccount
from crier.platforms.base import NetworkReview
from crier.review import service as review_service
from tests.conftest import MakeTenant, Tenant, assert_problem
from tests.media.conftest import image_bytes
from tests.post.conftest import create, draft_body, sandbox_account
from tests.webhook.conftest import add_endpoint

# A valid body for each request schema an id route takes, so that the answer is about the
# id, not about the body. Optional bodies are sent empty.
BODIES: dict[str, dict[str, Any]] = {
    "AnalyticsViewUpdate": {"name": "Renamed"},
    "MediaUpdate": {"alt_text": "Changed"},
    "MemberUpdate": {"name": "Renamed"},
    "PostUpdate": {"payload": {"text": "Changed"}},
    "ReplyRequest": {"text": "Thank you!"},
    "ReviewAlertRuleUpdate": {"enabled": False},
    "ReviewTemplatePreview": {"review_id": str(uuid.uuid4())},
    "ReviewTemplateUpdate": {"name": "Renamed"},
    "WebhookEndpointUpdate": {"description": "Changed"},
    "GrantConnect": {"external_ids": ["accounts/1/locations/2"]},
}


@dataclass
class Owned:
    """One resource of every kind, in one workspace, by the name of its path parameter."""

    ids: dict[str, str]


async def own_one_of_everything(tenant: Tenant) -> Owned:
    account = await sandbox_account(tenant)
    media = await tenant.post(
        "/v1/media", files={"file": ("a.png", image_bytes("PNG", (400, 400)), "image/png")}
    )
    assert media.status_code == 201, media.text
    post = await create(tenant, draft_body(account, payload={"text": "mine", "media_ids": []}))
    assert post.status_code == 201, post.text
    member = await tenant.post(
        "/v1/members",
        json={"email": f"m-{uuid.uuid4().hex[:8]}@example.com", "name": "M", "role": "viewer"},
    )
    assert member.status_code == 201, member.text
    key = await tenant.post("/v1/api-keys", json={"name": "mine"})
    assert key.status_code == 201, key.text
    endpoint = await add_endpoint(tenant, "https://hooks.example.com/crier")
    sent = await tenant.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")
    assert sent.status_code == 202, sent.text
    review = await read_a_review(tenant, account)
    template = await tenant.post("/v1/review-templates", json={"name": "Mine", "text": "Hi"})
    assert template.status_code == 201, template.text
    alert = await tenant.post("/v1/review-alert-rules", json={"name": "Low", "max_rating": 2})
    assert alert.status_code == 201, alert.text
    view = await tenant.post(
        "/v1/analytics/views", json={"name": "Mine", "metrics": ["likes"], "range": "last_7_days"}
    )
    assert view.status_code == 201, view.text
    export = await tenant.post(
        "/v1/analytics/exports", json={"format": "csv", "view_id": view.json()["id"]}
    )
    assert export.status_code == 202, export.text
    return Owned(
        {
            "account_id": account,
            "media_id": media.json()["id"],
            "post_id": post.json()["id"],
            "member_id": member.json()["id"],
            "key_id": key.json()["id"],
            "endpoint_id": endpoint["id"],
            "event_id": sent.json()["event_id"],
            "review_id": review,
            "template_id": template.json()["id"],
            "rule_id": alert.json()["id"],
            "view_id": view.json()["id"],
            "export_id": export.json()["id"],
            "grant_id": await a_grant(tenant),
        }
    )


async def a_grant(tenant: Tenant) -> str:
    """A consent of the tenant's owner that reaches one Google location, as the callback
    keeps it; its id."""
    state = tenant.http._transport.app.state  # type: ignore[attr-defined]
    grant = OAuthGrant(
        id=new_id(),
        workspace_id=uuid.UUID(tenant.id),
        member_id=uuid.UUID(tenant.owner_id),
        platform="google_business",
        access_token=state.vault.seal("ya29.token"),
        refresh_token=None,
        choices=[{"external_id": "accounts/1/locations/2", "name": "Shop"}],
        expires_at=datetime(9000, 1, 1, tzinfo=UTC),  # open whatever the test clock says
    )
    async with state.db.workspace_transaction(grant.workspace_id) as session:
        session.add(grant)
    return str(grant.id)


async def read_a_review(tenant: Tenant, account_id: str) -> str:
    """A review of the account's location, as a sync stores it; its id in Crier."""
    db: Database = tenant.http._transport.app.state.db  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    review = NetworkReview("rev-1", 4, "Nice", "Ada", now, now)
    async with db.workspace_transaction(uuid.UUID(tenant.id)) as session:
        account = await session.get(SocialAccount, (uuid.UUID(tenant.id), uuid.UUID(account_id)))
        assert account is not None
        await review_service.ingest(session, SystemClock(), account, [review])
    [stored] = (await tenant.get("/v1/reviews")).json()["data"]
    found: str = stored["id"]
    return found


NOT_IDS = {"/v1/oauth/callback/{platform}"}
"""Routes whose path names no resource of a workspace: the OAuth callback's workspace is
in its `state`, refused from another workspace in tests/social_account/test_oauth.py."""


def id_operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, operations in schema["paths"].items()
        if "{" in path and path not in NOT_IDS
        for method, operation in operations.items()
    ]


async def call(
    tenant: Tenant, method: str, path: str, operation: dict[str, Any], ids: dict[str, str]
) -> httpx.Response:
    names = re.findall(r"\{([^}]+)\}", path)
    unknown = [n for n in names if n not in ids]
    assert not unknown, f"{method} {path}: the sweep has no resource for {unknown}"
    url = path
    for name in names:
        url = url.replace("{" + name + "}", ids[name])
    headers = {**tenant.auth, "If-Match": "*"}
    body = operation.get("requestBody")
    if body is None or not body.get("required"):
        return await tenant.http.request(method, url, headers=headers)
    [content] = body["content"].values()
    schema = content["schema"]  # a model, or a union of models by its title
    ref = schema.get("$ref", "").rsplit("/", 1)[-1] or schema.get("title", "")
    assert ref in BODIES, f"{method} {path}: the sweep has no body for {ref or content}"
    return await tenant.http.request(method, url, headers=headers, json=BODIES[ref])


async def test_every_id_route_answers_another_workspaces_ids_like_missing_ones(
    make_tenant: MakeTenant,
) -> None:
    mine, theirs = await make_tenant(), await make_tenant()
    owned = await own_one_of_everything(theirs)
    missing = {name: str(uuid.uuid4()) for name in owned.ids}
    schema = (await mine.http.get("/openapi.json")).json()
    before = {path: (await theirs.get(path)).json() for path in _readable(owned)}
    swept = 0
    for method, path, operation in id_operations(schema):
        foreign = await call(mine, method, path, operation, owned.ids)
        absent = await call(mine, method, path, operation, missing)
        where = f"{method} {path}"
        assert_problem(absent, 404, "not-found")
        assert foreign.status_code == 404, f"{where}: {foreign.status_code} {foreign.text}"
        assert foreign.json()["type"] == absent.json()["type"], where
        assert foreign.json()["detail"] == absent.json()["detail"], where
        swept += 1
    assert swept >= 25
    after = {path: (await theirs.get(path)).json() for path in _readable(owned)}
    assert after == before  # nothing of theirs changed


def _readable(owned: Owned) -> list[str]:
    ids = owned.ids
    return [
        f"/v1/social-accounts/{ids['account_id']}",
        f"/v1/media/{ids['media_id']}",
        f"/v1/posts/{ids['post_id']}",
        f"/v1/members/{ids['member_id']}",
        f"/v1/api-keys/{ids['key_id']}",
        f"/v1/webhook-endpoints/{ids['endpoint_id']}",
        f"/v1/webhook-events/{ids['event_id']}",
    ]


async def test_another_workspaces_ids_in_bodies_and_filters_are_refused_like_missing_ones(
    make_tenant: MakeTenant,
) -> None:
    mine, theirs = await make_tenant(), await make_tenant()
    owned = await own_one_of_everything(theirs)
    account = await sandbox_account(mine)
    post = (await create(mine, draft_body(account))).json()
    endpoint = await add_endpoint(mine, "https://hooks.example.com/mine")
    event = (await mine.post(f"/v1/webhook-endpoints/{endpoint['id']}/test")).json()["event_id"]

    def probes(ids: dict[str, str]) -> list[tuple[str, str, dict[str, Any] | None]]:
        return [
            ("POST", "/v1/posts", draft_body(ids["account_id"])),
            (
                "POST",
                "/v1/posts",
                draft_body(account, payload={"text": "x", "media_ids": [ids["media_id"]]}),
            ),
            (
                "PATCH",
                f"/v1/posts/{post['id']}",
                {"targets": [{"social_account_id": ids["account_id"]}]},
            ),
            (
                "PATCH",
                f"/v1/posts/{post['id']}",
                {"payload": {"text": "x", "media_ids": [ids["media_id"]]}},
            ),
            ("POST", f"/v1/webhook-events/{event}/replay", {"endpoint_id": ids["endpoint_id"]}),
            ("GET", f"/v1/posts?social_account_id={ids['account_id']}", None),
            ("GET", f"/v1/api-keys?member_id={ids['member_id']}", None),
        ]

    missing = {name: str(uuid.uuid4()) for name in owned.ids}
    for (method, path, body), (_, absent_path, absent_body) in zip(
        probes(owned.ids), probes(missing), strict=True
    ):
        headers = {**mine.auth, "If-Match": "*"}
        foreign = await mine.http.request(method, path, headers=headers, json=body)
        absent = await mine.http.request(method, absent_path, headers=headers, json=absent_body)
        where = f"{method} {path.split('?')[0]}"
        assert foreign.status_code == absent.status_code, f"{where}: {foreign.text}"
        if method != "GET":  # a foreign id in a body is refused, never acted on
            assert foreign.status_code >= 400, f"{where}: {foreign.text}"
            assert foreign.json()["type"] == absent.json()["type"], where
        else:  # a foreign id in a filter matches nothing
            assert foreign.json()["data"] == absent.json()["data"] == [], where
    assert (await mine.get(f"/v1/posts/{post['id']}")).json()["targets"][0][
        "social_account_id"
    ] == account


async def test_another_workspaces_cursor_pages_only_through_ones_own_items(
    make_tenant: MakeTenant,
) -> None:
    """Their cursor is a position in time order, nothing more: it pages through one's own
    items after it, and shows none of theirs."""
    mine, theirs = await make_tenant(), await make_tenant()
    await sandbox_account(mine)  # before their cursor: not on the page
    their_first = await sandbox_account(theirs)
    await sandbox_account(theirs)  # theirs: never on the page
    mine_after = await sandbox_account(mine)
    their_page = (await theirs.get("/v1/social-accounts", params={"limit": 1})).json()
    assert [a["id"] for a in their_page["data"]] == [their_first]
    seen = await mine.get("/v1/social-accounts", params={"cursor": their_page["next_cursor"]})
    assert seen.status_code == 200
    assert [a["id"] for a in seen.json()["data"]] == [mine_after]
