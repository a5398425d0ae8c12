"""The current workspace: reading it, renaming it, its slug, timezone and plan limits."""

from __future__ import annotations

import secrets

from crier.kit.db import Database
from crier.workspace.service import create_workspace, slug_from_name
from tests.conftest import MakeTenant, Tenant, assert_problem


async def test_the_key_reads_its_own_workspace(tenant: Tenant) -> None:
    body = (await tenant.get("/v1/workspace")).json()
    assert body["id"] == tenant.id
    assert body["slug"] == tenant.slug
    assert body["plan"] == "free"
    assert body["limits"] == {
        "members": 3,
        "social_accounts": 5,
        "scheduled_posts_per_month": 100,
        "media_upload_bytes": 25 * 1024 * 1024,
    }
    assert body["usage"] == {"members": 1, "social_accounts": 0, "scheduled_posts_this_month": 0}


async def test_update_name_slug_and_timezone(tenant: Tenant) -> None:
    slug = f"renamed-{tenant.slug}"[:60]
    response = await tenant.patch(
        "/v1/workspace", json={"name": "Renamed", "slug": slug, "timezone": "America/New_York"}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["name"], body["slug"], body["timezone"]) == ("Renamed", slug, "America/New_York")
    assert (await tenant.get("/v1/workspace")).json()["timezone"] == "America/New_York"


async def test_an_unknown_timezone_is_422(tenant: Tenant) -> None:
    # `localtime` and `Factory` are files of a host's zone folder, not places.
    for zone in ("Mars/Olympus", "EST5EDT-ish", "+02:00", "", "localtime", "Factory"):
        body = assert_problem(
            await tenant.patch("/v1/workspace", json={"timezone": zone}), 422, "validation-error"
        )
        errors = body["errors"]
        assert isinstance(errors, list)
        assert errors[0]["loc"] == ["body", "timezone"]
    assert (await tenant.get("/v1/workspace")).json()["timezone"] == "UTC"


async def test_a_slug_in_use_elsewhere_is_409_and_changes_nothing(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    response = await tenant.patch(
        "/v1/workspace", json={"slug": other_tenant.slug, "name": "Should not stick"}
    )
    assert_problem(response, 409, "slug-taken")
    body = (await tenant.get("/v1/workspace")).json()
    assert body["slug"] == tenant.slug
    assert body["name"] != "Should not stick"


async def test_a_malformed_slug_is_422(tenant: Tenant) -> None:
    for slug in ("Upper", "-dash", "sp ace", "x" * 70):
        assert_problem(
            await tenant.patch("/v1/workspace", json={"slug": slug}), 422, "validation-error"
        )


async def test_plans_have_their_own_limits(make_tenant: MakeTenant) -> None:
    agency = await make_tenant(plan="agency")
    assert (await agency.get("/v1/workspace")).json()["limits"]["members"] == 100


async def test_two_workspaces_never_see_each_other(tenant: Tenant, other_tenant: Tenant) -> None:
    assert (await tenant.get("/v1/workspace")).json()["id"] == tenant.id
    assert (await other_tenant.get("/v1/workspace")).json()["id"] == other_tenant.id


async def test_workspaces_with_the_same_name_get_their_own_slugs(db: Database) -> None:
    name = f"Same Name {secrets.token_hex(3)}"
    slugs = []
    for _ in range(3):
        async with db.transaction() as session:
            slugs.append((await create_workspace(session, name=name)).workspace.slug)
    assert slugs[0] == slug_from_name(name)
    assert len(set(slugs)) == 3
    assert all(s.startswith(slug_from_name(name)) for s in slugs)
