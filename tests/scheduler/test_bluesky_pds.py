"""Bluesky against the reference server (`@atproto/pds` on loopback), not the emulator: an
account made there is connected through Crier's API with an app password, and posts the
scheduler publishes are read back from the server's repository and blob store."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from PIL import Image
from sqlalchemy import select

from crier.kit.db import Database
from crier.kit.vault import Vault
from crier.models import SocialAccount
from crier.platforms.bluesky.adapter import record_key
from crier.scheduler.worker import Worker
from tests.bluesky import sign_in
from tests.conftest import FakeClock, Tenant, assert_problem
from tests.reference_pds import LosingProxy, ReferencePds
from tests.scheduler.test_mastodon import image, publish_due, schedule
from tests.scheduler.test_worker import deliveries
from tests.servers import serving


def handle_for(name: str, tenant: Tenant) -> str:
    return (
        f"{name}{tenant.slug[-6:]}.test".lower()
    )  # one account per test, the suite shares a server


async def connect(tenant: Tenant, pds: ReferencePds, name: str) -> tuple[dict[str, Any], str]:
    handle = handle_for(name, tenant)
    _, _, app_password = pds.account(handle)
    connected = await sign_in(tenant, pds.url, handle, app_password)
    assert connected.status_code == 201, connected.text
    account: dict[str, Any] = connected.json()
    return account, handle


async def test_an_app_password_connects_and_the_accounts_own_password_is_refused(
    tenant: Tenant, pds: ReferencePds
) -> None:
    handle = handle_for("ann", tenant)
    did, own, app_password = pds.account(handle)
    refused = await sign_in(tenant, pds.url, handle, own)
    body = assert_problem(refused, 422, "platform-credentials-refused")
    assert "app password" in str(body["detail"])
    wrong = await sign_in(tenant, pds.url, handle, "aaaa-bbbb-cccc-dddd")
    assert_problem(wrong, 422, "platform-credentials-refused")
    connected = await sign_in(tenant, pds.url, handle, app_password)
    assert connected.status_code == 201, connected.text
    account = connected.json()
    assert (account["external_id"], account["handle"], account["server_url"]) == (
        did,
        handle,
        pds.url,
    )
    assert account["status"] == "active"


async def test_disconnecting_ends_the_session_at_the_server(
    tenant: Tenant, pds: ReferencePds, db: Database, vault: Vault
) -> None:
    account, _ = await connect(tenant, pds, "eve")
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        sealed = await session.scalar(
            select(SocialAccount.refresh_token).where(SocialAccount.id == UUID(account["id"]))
        )
    assert sealed is not None
    refresh = {"Authorization": f"Bearer {vault.open(sealed)}"}
    gone = await tenant.delete(f"/v1/social-accounts/{account['id']}")
    assert gone.status_code == 204, gone.text
    async with httpx.AsyncClient() as client:
        answer = await client.post(
            f"{pds.url}/xrpc/com.atproto.server.refreshSession", headers=refresh
        )
    assert (answer.status_code, answer.json()["error"]) == (400, "ExpiredToken"), answer.text


async def test_a_post_with_an_image_is_published_and_read_back_from_the_server(
    tenant: Tenant, pds: ReferencePds, worker: Worker, clock: FakeClock
) -> None:
    account, handle = await connect(tenant, pds, "bea")
    did = account["external_id"]
    media = await image(tenant, alt_text="A red square")
    words = f"Hello from @{handle}, see https://example.com/menu #crier"
    post = await schedule(tenant, account, clock, text=words, media=[media])
    await publish_due(worker, clock)

    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    rkey = record_key(delivery["id"])
    assert delivery["platform_post_id"] == f"at://{did}/app.bsky.feed.post/{rkey}"
    stored = pds.get(
        "com.atproto.repo.getRecord", repo=did, collection="app.bsky.feed.post", rkey=rkey
    )
    assert stored.status_code == 200, stored.text
    value = stored.json()["value"]
    assert value["text"] == words
    encoded = words.encode()
    shown = {
        encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(): f["features"][0]
        for f in value["facets"]
    }
    assert shown[f"@{handle}"]["did"] == did  # resolved by the server itself
    assert shown["https://example.com/menu"]["uri"] == "https://example.com/menu"
    assert shown["#crier"]["tag"] == "crier"
    [picture] = value["embed"]["images"]
    assert picture["alt"] == "A red square"
    assert picture["aspectRatio"] == {"width": 640, "height": 480}
    blob = pds.get("com.atproto.sync.getBlob", did=did, cid=picture["image"]["ref"]["$link"])
    assert blob.status_code == 200, blob.text
    assert Image.open(io.BytesIO(blob.content)).size == (640, 480)
    assert len(pds.records(did)) == 1


@pytest.fixture
async def losing(pds: ReferencePds) -> AsyncIterator[tuple[str, LosingProxy]]:
    proxy = LosingProxy(pds.url)
    async with serving(proxy) as url:
        yield url, proxy


async def test_a_post_whose_answer_was_lost_is_not_posted_twice(
    tenant: Tenant,
    pds: ReferencePds,
    worker: Worker,
    clock: FakeClock,
    losing: tuple[str, LosingProxy],
) -> None:
    url, proxy = losing
    handle = handle_for("cat", tenant)
    did, _, app_password = pds.account(handle)
    connected = await sign_in(tenant, url, handle, app_password)
    assert connected.status_code == 201, connected.text
    post = await schedule(tenant, connected.json(), clock, settings={"replies": "nobody"})
    await publish_due(worker, clock)
    assert proxy.lose == 0
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["attempts"][0]["error_code"] == "timeout", delivery
    assert len(pds.records(did)) == 1  # the server had stored it

    await publish_due(worker, clock)  # the resend meets its own record key
    [delivery] = await deliveries(tenant, post["id"])
    [record] = pds.records(did)
    assert delivery["status"] == "published", delivery
    assert delivery["platform_post_id"] == record["uri"]
    gate = pds.get(
        "com.atproto.repo.getRecord",
        repo=did,
        collection="app.bsky.feed.threadgate",
        rkey=record_key(delivery["id"]),
    )
    assert gate.status_code == 200, gate.text
    assert gate.json()["value"]["allow"] == []


async def test_a_session_past_its_expiry_is_refreshed_by_the_server_before_posting(
    tenant: Tenant, pds: ReferencePds, worker: Worker, clock: FakeClock
) -> None:
    account, _ = await connect(tenant, pds, "dan")
    clock.advance(timedelta(hours=3))  # past the access token's expiry, by Crier's clock
    post = await schedule(tenant, account, clock)
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    refreshed = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert refreshed["status"] == "active"
    assert refreshed["last_refreshed_at"] > account["last_refreshed_at"]
    assert len(pds.records(account["external_id"])) == 1
