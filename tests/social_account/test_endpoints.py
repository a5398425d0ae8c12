"""Social accounts: connecting the sandbox, status, token expiry, disconnecting."""

from __future__ import annotations

from pathlib import Path

import httpx

from crier.kit.db import Database, DatabaseUrls
from crier.kit.storage import LocalStorage
from crier.kit.vault import Vault
from crier.social_account.schemas import Platform
from tests.conftest import (
    FakeClock,
    MakeTenant,
    Tenant,
    assert_problem,
    build_runtime,
    connect_as,
)
from tests.servers import free_port


async def test_connect_a_sandbox_account_with_no_credentials(tenant: Tenant) -> None:
    response = await tenant.post(
        "/v1/social-accounts",
        json={"platform": "sandbox", "handle": "crier_demo", "display_name": "Crier Demo"},
    )
    assert response.status_code == 201, response.text
    account = response.json()
    assert account["platform"] == "sandbox"
    assert account["status"] == "active"
    assert account["token_expires_at"] is not None
    assert account["handle"] == "crier_demo"
    assert not any("token" in k and k != "token_expires_at" for k in account)
    assert (await tenant.get(f"/v1/social-accounts/{account['id']}")).json() == account
    listed = (await tenant.get("/v1/social-accounts")).json()["data"]
    assert [a["id"] for a in listed] == [account["id"]]


async def test_tokens_are_stored_encrypted(
    tenant: Tenant, db_urls: DatabaseUrls, vault: Vault
) -> None:
    account = (await tenant.post("/v1/social-accounts", json={"platform": "sandbox"})).json()
    with connect_as(db_urls) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [tenant.id])
        row = conn.execute(
            "SELECT access_token, refresh_token FROM social_accounts WHERE id = %s", [account["id"]]
        ).fetchone()
    assert row is not None
    access, refresh = bytes(row[0]), bytes(row[1])
    assert access.startswith(b"gAAAA")  # a Fernet token, not the platform token
    assert vault.open(access) != vault.open(refresh)


async def test_disconnect_erases_tokens_and_frees_the_plan_slot(
    make_tenant: MakeTenant, db_urls: DatabaseUrls
) -> None:
    tenant = await make_tenant(plan="free")  # 5 accounts
    ids = [
        (await tenant.post("/v1/social-accounts", json={"platform": "sandbox"})).json()["id"]
        for _ in range(5)
    ]
    full = await tenant.post("/v1/social-accounts", json={"platform": "sandbox"})
    body = assert_problem(full, 403, "plan-limit-exceeded")
    assert (body["limit"], body["limit_value"]) == ("social_accounts", 5)

    assert (await tenant.delete(f"/v1/social-accounts/{ids[0]}")).status_code == 204
    gone = (await tenant.get(f"/v1/social-accounts/{ids[0]}")).json()
    assert gone["status"] == "disconnected"
    assert gone["disconnected_at"] is not None
    with connect_as(db_urls) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [tenant.id])
        row = conn.execute(
            "SELECT access_token, refresh_token FROM social_accounts WHERE id = %s", [ids[0]]
        ).fetchone()
    assert row == (None, None)
    assert (await tenant.delete(f"/v1/social-accounts/{ids[0]}")).status_code == 204
    again = await tenant.post("/v1/social-accounts", json={"platform": "sandbox"})
    assert again.status_code == 201
    filtered = await tenant.get("/v1/social-accounts", params={"status": "disconnected"})
    assert [a["id"] for a in filtered.json()["data"]] == [ids[0]]


async def test_platforms_needing_oauth_cannot_be_connected_here(tenant: Tenant) -> None:
    for body in (
        {"platform": "x"},
        {"platform": "myspace"},
        {"platform": "sandbox", "token": "t"},
        {"platform": "sandbox", "handle": "bad handle!"},
    ):
        assert_problem(await tenant.post("/v1/social-accounts", json=body), 422, "validation-error")


async def test_viewers_read_but_do_not_connect(tenant: Tenant) -> None:
    account = (await tenant.post("/v1/social-accounts", json={"platform": "sandbox"})).json()
    viewer = await tenant.member_with_key("viewer")
    assert (await viewer.get(f"/v1/social-accounts/{account['id']}")).status_code == 200
    response = await viewer.post("/v1/social-accounts", json={"platform": "sandbox"})
    assert assert_problem(response, 403, "permission-denied")["permission"] == (
        "social_accounts:manage"
    )
    assert_problem(
        await viewer.delete(f"/v1/social-accounts/{account['id']}"), 403, "permission-denied"
    )


async def test_another_workspaces_accounts_answer_404(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = (await other_tenant.post("/v1/social-accounts", json={"platform": "sandbox"})).json()
    assert_problem(await tenant.get(f"/v1/social-accounts/{theirs['id']}"), 404, "not-found")
    assert_problem(await tenant.delete(f"/v1/social-accounts/{theirs['id']}"), 404, "not-found")
    assert (await tenant.get("/v1/social-accounts")).json()["data"] == []
    assert (await other_tenant.get(f"/v1/social-accounts/{theirs['id']}")).json()["status"] == (
        "active"
    )


async def test_sandbox_tokens_come_from_the_sandbox_platform(
    tenant: Tenant, db_urls: DatabaseUrls, vault: Vault, sandbox_url: str
) -> None:
    account = (
        await tenant.post(
            "/v1/social-accounts", json={"platform": "sandbox", "handle": "from_platform"}
        )
    ).json()
    with connect_as(db_urls) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [tenant.id])
        row = conn.execute(
            "SELECT access_token FROM social_accounts WHERE id = %s", [account["id"]]
        ).fetchone()
    assert row is not None
    token = vault.open(bytes(row[0]))
    async with httpx.AsyncClient() as client:
        me = await client.get(f"{sandbox_url}/v1/me", headers={"Authorization": f"Bearer {token}"})

    assert me.status_code == 200
    assert me.json()["id"] == account["external_id"]
    assert me.json()["handle"] == "from_platform"


async def test_an_unreachable_platform_is_503_and_connects_nothing(
    tenant: Tenant,
    db: Database,
    vault: Vault,
    storage: LocalStorage,
    clock: FakeClock,
    tmp_path: Path,
) -> None:
    runtime = build_runtime(db, vault, storage, clock, f"http://127.0.0.1:{free_port()}", tmp_path)
    transport = httpx.ASGITransport(app=runtime.api())
    async with httpx.AsyncClient(transport=transport, base_url="http://crier.test") as client:
        response = await client.post(
            "/v1/social-accounts", json={"platform": "sandbox"}, headers=tenant.auth
        )
        listed = await client.get("/v1/platforms", headers=tenant.auth)
    await runtime.close()
    x = next(p for p in listed.json() if p["name"] == "x")
    assert (x["configured"], x["connects"]) == (False, None)  # no X app in these settings
    body = assert_problem(response, 503, "platform-unavailable")
    assert body["platform_error"] == "platform_unavailable"
    assert (await tenant.get("/v1/social-accounts")).json()["data"] == []


async def test_platforms_lists_every_platform_with_how_it_connects_and_its_rules(
    tenant: Tenant,
) -> None:
    answer = await tenant.get("/v1/platforms")
    assert answer.status_code == 200, answer.text
    found = {p["name"]: p for p in answer.json()}
    assert set(found) == {p.value for p in Platform}
    assert (found["sandbox"]["configured"], found["sandbox"]["connects"]) == (True, "direct")
    mastodon = found["mastodon"]
    assert (mastodon["configured"], mastodon["connects"]) == (True, "oauth_instance")
    assert mastodon["rules"]["max_text"] == 500
    assert "23" in mastodon["rules"]["text_counting"]
    assert mastodon["rules"]["max_image_bytes"] == 16 * 1024 * 1024
    bluesky = found["bluesky"]
    assert (bluesky["configured"], bluesky["connects"]) == (True, "app_password")
    assert (bluesky["rules"]["max_text"], bluesky["rules"]["max_text_bytes"]) == (300, 3000)
    assert bluesky["rules"]["text_counting"].startswith("graphemes")
    assert (bluesky["rules"]["max_media"], bluesky["rules"]["max_image_bytes"]) == (4, 2_000_000)
    assert (found["x"]["configured"], found["x"]["connects"]) == (True, "oauth")  # its app
    assert found["x"]["rules"]["max_text"] == 280
    assert (found["facebook"]["configured"], found["facebook"]["connects"]) == (False, None)
    assert_problem(await tenant.http.get("/v1/platforms"), 401, "unauthorized")


async def test_connect_is_not_mistaken_for_an_account_id(tenant: Tenant) -> None:
    wrong_method = await tenant.get("/v1/social-accounts/connect")
    assert_problem(wrong_method, 405, "method-not-allowed")
    assert wrong_method.headers["allow"] == "POST"
    assert_problem(await tenant.get("/v1/social-accounts/not-an-id"), 404, "not-found")
