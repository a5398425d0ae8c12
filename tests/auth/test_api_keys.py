"""API keys: bearer authentication, hashing, scopes, revocation, expiry."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx

from crier.kit.db import DatabaseUrls
from tests.conftest import FakeClock, Tenant, assert_problem, connect_as


async def test_missing_key_is_401_problem(http: httpx.AsyncClient) -> None:
    response = await http.get("/v1/workspace")
    assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].startswith("Bearer")


async def test_malformed_header_is_401(http: httpx.AsyncClient, tenant: Tenant) -> None:
    for header in ("Basic abc", f"Token {tenant.key}", "Bearer not-a-key", "Bearer"):
        response = await http.get("/v1/workspace", headers={"Authorization": header})
        assert_problem(response, 401, "unauthorized")


async def test_unknown_key_is_401(http: httpx.AsyncClient) -> None:
    fake = "crier_sk_" + "A" * 43
    response = await http.get("/v1/workspace", headers={"Authorization": f"Bearer {fake}"})
    assert_problem(response, 401, "unauthorized")


async def test_created_key_is_shown_once_and_works(tenant: Tenant) -> None:
    created = await tenant.post("/v1/api-keys", json={"name": "ci"})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["key"].startswith("crier_sk_")
    assert body["prefix"] == body["key"][:15]
    assert body["member_id"] == tenant.owner_id
    listed = await tenant.get("/v1/api-keys")
    assert all("key" not in k for k in listed.json()["data"])
    assert body["id"] in {k["id"] for k in listed.json()["data"]}
    fetched = await tenant.get(f"/v1/api-keys/{body['id']}")
    assert "key" not in fetched.json()
    me = await tenant.http.get("/v1/me", headers={"Authorization": f"Bearer {body['key']}"})
    assert me.status_code == 200
    assert me.json()["api_key_id"] == body["id"]


async def test_keys_are_stored_as_sha256_only(tenant: Tenant, db_urls: DatabaseUrls) -> None:
    body = (await tenant.post("/v1/api-keys", json={"name": "hashed"})).json()
    with connect_as(db_urls) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [tenant.id])
        row = conn.execute("SELECT * FROM api_keys WHERE id = %s", [body["id"]]).fetchone()
    assert row is not None
    assert hashlib.sha256(body["key"].encode()).digest() in row
    assert not any(isinstance(v, str) and body["key"] in v for v in row)


async def test_revoked_key_stops_working_at_once(tenant: Tenant) -> None:
    body = (await tenant.post("/v1/api-keys", json={"name": "short-lived"})).json()
    auth = {"Authorization": f"Bearer {body['key']}"}
    assert (await tenant.http.get("/v1/workspace", headers=auth)).status_code == 200
    revoked = await tenant.delete(f"/v1/api-keys/{body['id']}")
    assert revoked.status_code == 204
    assert_problem(await tenant.http.get("/v1/workspace", headers=auth), 401, "unauthorized")
    listed = (await tenant.get(f"/v1/api-keys/{body['id']}")).json()
    assert listed["revoked_at"] is not None


async def test_a_key_may_revoke_itself(tenant: Tenant) -> None:
    body = (await tenant.post("/v1/api-keys", json={"name": "self"})).json()
    auth = {"Authorization": f"Bearer {body['key']}"}
    assert (await tenant.http.delete(f"/v1/api-keys/{body['id']}", headers=auth)).status_code == 204
    assert_problem(await tenant.http.get("/v1/me", headers=auth), 401, "unauthorized")


async def test_expired_key_is_401(tenant: Tenant, clock: FakeClock) -> None:
    expires = (clock.now() + timedelta(hours=1)).isoformat()
    body = (await tenant.post("/v1/api-keys", json={"name": "t", "expires_at": expires})).json()
    auth = {"Authorization": f"Bearer {body['key']}"}
    assert (await tenant.http.get("/v1/me", headers=auth)).status_code == 200
    clock.advance(timedelta(hours=2))
    assert_problem(await tenant.http.get("/v1/me", headers=auth), 401, "unauthorized")


async def test_expiry_must_be_future_and_carry_an_offset(tenant: Tenant, clock: FakeClock) -> None:
    past = (clock.now() - timedelta(minutes=1)).isoformat()
    assert_problem(
        await tenant.post("/v1/api-keys", json={"name": "t", "expires_at": past}),
        422,
        "validation-error",
    )
    naive = await tenant.post(
        "/v1/api-keys", json={"name": "t", "expires_at": "2031-01-01T00:00:00"}
    )
    assert_problem(naive, 422, "naive-timestamp")


async def test_last_used_time_is_recorded(tenant: Tenant, clock: FakeClock) -> None:
    body = (await tenant.post("/v1/api-keys", json={"name": "used"})).json()
    assert body["last_used_at"] is None
    auth = {"Authorization": f"Bearer {body['key']}"}
    clock.advance(timedelta(minutes=5))
    await tenant.http.get("/v1/me", headers=auth)
    used = (await tenant.get(f"/v1/api-keys/{body['id']}")).json()
    assert used["last_used_at"] is not None
    assert abs(httpx_time(used["last_used_at"]) - clock.now().timestamp()) < 1


def httpx_time(value: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(value).timestamp()


async def test_scopes_narrow_what_a_key_can_do(tenant: Tenant) -> None:
    body = (
        await tenant.post("/v1/api-keys", json={"name": "ro", "scopes": ["workspace:read"]})
    ).json()
    auth = {"Authorization": f"Bearer {body['key']}"}
    assert (await tenant.http.get("/v1/workspace", headers=auth)).status_code == 200
    denied = assert_problem(
        await tenant.http.get("/v1/members", headers=auth), 403, "permission-denied"
    )
    assert denied["permission"] == "members:read"
    me = (await tenant.http.get("/v1/me", headers=auth)).json()
    assert me["permissions"] == ["workspace:read"]


async def test_a_key_cannot_be_scoped_beyond_its_member(tenant: Tenant) -> None:
    viewer = await tenant.member_with_key("viewer")
    response = await viewer.post("/v1/api-keys", json={"name": "x", "scopes": ["members:manage"]})
    assert assert_problem(response, 403, "permission-denied")["permission"] == "members:manage"


async def test_a_scoped_key_cannot_mint_a_broader_key(tenant: Tenant) -> None:
    scoped = (
        await tenant.post(
            "/v1/api-keys", json={"name": "narrow", "scopes": ["api_keys:create", "workspace:read"]}
        )
    ).json()
    auth = {"Authorization": f"Bearer {scoped['key']}"}
    minted = (await tenant.http.post("/v1/api-keys", headers=auth, json={"name": "n2"})).json()
    assert sorted(minted["scopes"]) == ["api_keys:create", "workspace:read"]


async def test_unknown_scope_is_422(tenant: Tenant) -> None:
    response = await tenant.post("/v1/api-keys", json={"name": "x", "scopes": ["root"]})
    assert_problem(response, 422, "validation-error")


async def test_members_see_and_revoke_only_their_own_keys(tenant: Tenant) -> None:
    editor = await tenant.member_with_key("editor")
    owner_key = (await tenant.post("/v1/api-keys", json={"name": "owner's"})).json()
    assert owner_key["id"] not in {
        k["id"] for k in (await editor.get("/v1/api-keys")).json()["data"]
    }
    assert_problem(await editor.get(f"/v1/api-keys/{owner_key['id']}"), 404, "not-found")
    assert_problem(await editor.delete(f"/v1/api-keys/{owner_key['id']}"), 404, "not-found")
    others = await editor.get("/v1/api-keys", params={"member_id": tenant.owner_id})
    assert_problem(others, 403, "permission-denied")
    everyone = (await tenant.get("/v1/api-keys")).json()["data"]
    assert {k["member_id"] for k in everyone} >= {tenant.owner_id, editor.owner_id}


async def test_another_workspaces_key_ids_answer_404(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = (await other_tenant.post("/v1/api-keys", json={"name": "theirs"})).json()
    assert_problem(await tenant.get(f"/v1/api-keys/{theirs['id']}"), 404, "not-found")
    assert_problem(await tenant.delete(f"/v1/api-keys/{theirs['id']}"), 404, "not-found")
    still = await other_tenant.http.get(
        "/v1/me", headers={"Authorization": f"Bearer {theirs['key']}"}
    )
    assert still.status_code == 200
    mine = (await tenant.get("/v1/api-keys", params={"member_id": other_tenant.owner_id})).json()
    assert mine["data"] == []


async def test_key_list_paginates_in_creation_order(tenant: Tenant) -> None:
    made = [
        (await tenant.post("/v1/api-keys", json={"name": f"k{i}"})).json()["id"] for i in range(4)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await tenant.get("/v1/api-keys", params=params)).json()
        seen += [k["id"] for k in page["data"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen[-4:] == made
    assert len(seen) == len(set(seen)) == 5


async def test_bad_cursor_is_422(tenant: Tenant) -> None:
    response = await tenant.get("/v1/api-keys", params={"cursor": "!!"})
    assert_problem(response, 422, "validation-error")
