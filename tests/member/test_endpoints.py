"""Members: roles, permission overrides, the last owner, plan limits, the tenant wall."""

from __future__ import annotations

import asyncio

from tests.conftest import MakeTenant, Tenant, assert_problem


async def test_add_list_get_update_and_remove_a_member(tenant: Tenant) -> None:
    added = await tenant.post(
        "/v1/members", json={"email": "Ada@Example.com", "name": "Ada", "role": "editor"}
    )
    assert added.status_code == 201, added.text
    ada = added.json()
    assert ada["email"] == "ada@example.com"
    assert "posts:schedule" in ada["effective_permissions"]
    assert "members:manage" not in ada["effective_permissions"]

    listed = (await tenant.get("/v1/members")).json()["data"]
    assert [m["id"] for m in listed] == [tenant.owner_id, ada["id"]]
    assert (await tenant.get(f"/v1/members/{ada['id']}")).json()["name"] == "Ada"

    updated = await tenant.patch(f"/v1/members/{ada['id']}", json={"role": "viewer"})
    assert updated.json()["role"] == "viewer"
    assert "posts:schedule" not in updated.json()["effective_permissions"]

    assert (await tenant.delete(f"/v1/members/{ada['id']}")).status_code == 204
    assert_problem(await tenant.get(f"/v1/members/{ada['id']}"), 404, "not-found")
    assert [m["id"] for m in (await tenant.get("/v1/members")).json()["data"]] == [tenant.owner_id]


async def test_grants_and_denials_adjust_the_role(tenant: Tenant) -> None:
    contributor = await tenant.member_with_key(
        "contributor", permissions={"grant": ["posts:schedule"], "deny": ["media:upload"]}
    )
    me = (await contributor.get("/v1/me")).json()
    assert "posts:schedule" in me["permissions"]
    assert "media:upload" not in me["permissions"]
    assert "posts:write" in me["permissions"]


async def test_a_missing_permission_is_403_naming_it(tenant: Tenant) -> None:
    viewer = await tenant.member_with_key("viewer")
    response = await viewer.patch("/v1/workspace", json={"name": "mine now"})
    assert assert_problem(response, 403, "permission-denied")["permission"] == "workspace:update"
    response = await viewer.post(
        "/v1/members", json={"email": "x@example.com", "name": "X", "role": "viewer"}
    )
    assert assert_problem(response, 403, "permission-denied")["permission"] == "members:manage"


async def test_denying_a_permission_withholds_it(tenant: Tenant) -> None:
    admin = await tenant.member_with_key("admin", permissions={"deny": ["members:read"]})
    response = await admin.get("/v1/members")
    assert assert_problem(response, 403, "permission-denied")["permission"] == "members:read"


async def test_only_owners_make_owners(tenant: Tenant) -> None:
    admin = await tenant.member_with_key("admin")
    response = await admin.post(
        "/v1/members", json={"email": "o2@example.com", "name": "O2", "role": "owner"}
    )
    assert assert_problem(response, 403, "permission-denied")["permission"] == (
        "members:manage_owners"
    )
    response = await admin.patch(f"/v1/members/{admin.owner_id}", json={"role": "owner"})
    assert_problem(response, 403, "permission-denied")
    response = await admin.patch(f"/v1/members/{tenant.owner_id}", json={"role": "viewer"})
    assert_problem(response, 403, "permission-denied")
    response = await admin.delete(f"/v1/members/{tenant.owner_id}")
    assert_problem(response, 403, "permission-denied")


async def test_nobody_grants_a_permission_they_lack(tenant: Tenant) -> None:
    admin = await tenant.member_with_key("admin")
    response = await admin.post(
        "/v1/members",
        json={
            "email": "e@example.com",
            "name": "E",
            "role": "editor",
            "permissions": {"grant": ["members:manage_owners"]},
        },
    )
    assert assert_problem(response, 403, "permission-denied")["permission"] == (
        "members:manage_owners"
    )


async def test_the_last_owner_cannot_be_demoted_or_removed(tenant: Tenant) -> None:
    response = await tenant.patch(f"/v1/members/{tenant.owner_id}", json={"role": "admin"})
    assert_problem(response, 409, "last-owner")
    assert_problem(await tenant.delete(f"/v1/members/{tenant.owner_id}"), 409, "last-owner")
    me = (await tenant.get("/v1/me")).json()
    assert me["role"] == "owner"


async def test_with_two_owners_one_may_step_down(tenant: Tenant) -> None:
    second = await tenant.member_with_key("owner")
    response = await tenant.patch(f"/v1/members/{tenant.owner_id}", json={"role": "admin"})
    assert response.status_code == 200
    assert_problem(await second.delete(f"/v1/members/{second.owner_id}"), 409, "last-owner")


async def test_two_owners_demoting_each_other_at_once_leave_one_owner(tenant: Tenant) -> None:
    second = await tenant.member_with_key("owner")
    results = await asyncio.gather(
        tenant.patch(f"/v1/members/{second.owner_id}", json={"role": "viewer"}),
        second.patch(f"/v1/members/{tenant.owner_id}", json={"role": "viewer"}),
    )
    winners = [r for r in results if r.status_code == 200]
    losers = [r for r in results if r.status_code != 200]
    assert len(winners) == 1
    assert len(losers) == 1
    # The loser either waited on the winner's lock and found itself the last owner (409), or
    # authenticated after the winner committed and was no longer an owner at all (403).
    assert (losers[0].status_code, losers[0].json()["type"]) in {
        (409, "/problems/last-owner"),
        (403, "/problems/permission-denied"),
    }
    survivor = tenant if results[0].status_code == 200 else second
    members = (await survivor.get("/v1/members")).json()["data"]
    assert [m["role"] for m in members].count("owner") == 1


async def test_a_member_may_leave_and_their_keys_die(tenant: Tenant) -> None:
    viewer = await tenant.member_with_key("viewer")
    assert (await viewer.delete(f"/v1/members/{viewer.owner_id}")).status_code == 204
    assert_problem(await viewer.get("/v1/me"), 401, "unauthorized")


async def test_adding_an_existing_member_is_409(tenant: Tenant) -> None:
    body = {"email": "twice@example.com", "name": "T", "role": "viewer"}
    assert (await tenant.post("/v1/members", json=body)).status_code == 201
    assert_problem(await tenant.post("/v1/members", json=body), 409, "member-exists")


async def test_a_former_member_can_be_added_back(tenant: Tenant) -> None:
    body = {"email": "back@example.com", "name": "B", "role": "viewer"}
    first = (await tenant.post("/v1/members", json=body)).json()
    await tenant.delete(f"/v1/members/{first['id']}")
    again = await tenant.post("/v1/members", json={**body, "role": "editor"})
    assert again.status_code == 201
    assert again.json()["id"] == first["id"]
    assert again.json()["role"] == "editor"


async def test_the_same_person_can_belong_to_two_workspaces(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    body = {"email": "shared@example.com", "name": "S", "role": "viewer"}
    assert (await tenant.post("/v1/members", json=body)).status_code == 201
    assert (await other_tenant.post("/v1/members", json=body)).status_code == 201


async def test_the_plan_limits_members(make_tenant: MakeTenant) -> None:
    tenant = await make_tenant(plan="free")  # 3 members
    for i in range(2):
        ok = await tenant.post(
            "/v1/members", json={"email": f"m{i}@example.com", "name": "M", "role": "viewer"}
        )
        assert ok.status_code == 201
    response = await tenant.post(
        "/v1/members", json={"email": "m3@example.com", "name": "M", "role": "viewer"}
    )
    body = assert_problem(response, 403, "plan-limit-exceeded")
    assert body["limit"] == "members"
    assert body["limit_value"] == 3
    assert body["plan"] == "free"


async def test_invalid_input_is_422(tenant: Tenant) -> None:
    for body in (
        {"email": "not-an-email", "name": "X", "role": "viewer"},
        {"email": "x@example.com", "name": "X", "role": "emperor"},
        {"email": "x@example.com", "name": "", "role": "viewer"},
        {"email": "x@example.com", "name": "X", "role": "viewer", "extra": 1},
        {
            "email": "x@example.com",
            "name": "X",
            "role": "viewer",
            "permissions": {"grant": ["fly"]},
        },
    ):
        body_out = assert_problem(
            await tenant.post("/v1/members", json=body), 422, "validation-error"
        )
        assert body_out["errors"]
    assert_problem(await tenant.get("/v1/members/not-a-uuid"), 422, "validation-error")


async def test_another_workspaces_member_ids_answer_404(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = other_tenant.owner_id
    assert_problem(await tenant.get(f"/v1/members/{theirs}"), 404, "not-found")
    assert_problem(
        await tenant.patch(f"/v1/members/{theirs}", json={"name": "x"}), 404, "not-found"
    )
    assert_problem(await tenant.delete(f"/v1/members/{theirs}"), 404, "not-found")
    assert (await other_tenant.get(f"/v1/members/{theirs}")).json()["name"] == "Owner"
