"""Posts: idempotent creates, permissions, the tenant wall, media in use, plan limits."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import func, select

from crier.kit.db import Database
from crier.models import Post, PostTarget
from tests.conftest import FakeClock, MakeTenant, Tenant, assert_problem
from tests.media.conftest import image_bytes
from tests.post.conftest import at, create, draft_body, force_status, sandbox_account, with_etag


async def test_a_retried_create_replays_the_first_response(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    body = draft_body(account)
    first = await create(tenant, body, **{"Idempotency-Key": "create-1"})
    again = await create(tenant, body, **{"Idempotency-Key": "create-1"})
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["etag"] == first.headers["etag"]
    assert "idempotent-replayed" not in first.headers
    assert len((await tenant.get("/v1/posts")).json()["data"]) == 1


async def test_a_key_reused_with_another_body_is_422(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    await create(tenant, draft_body(account), **{"Idempotency-Key": "k"})
    other = draft_body(account, payload={"text": "something else"})
    assert_problem(
        await create(tenant, other, **{"Idempotency-Key": "k"}), 422, "idempotency-key-reused"
    )


async def test_concurrent_identical_creates_make_exactly_one_post(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    body = draft_body(account)
    responses = await asyncio.gather(
        *(create(tenant, body, **{"Idempotency-Key": "storm"}) for _ in range(8))
    )
    assert {r.status_code for r in responses} <= {201, 409}
    for r in responses:
        if r.status_code == 409:
            assert_problem(r, 409, "idempotency-in-flight")
    created = {r.json()["id"] for r in responses if r.status_code == 201}
    assert len(created) == 1
    assert len((await tenant.get("/v1/posts")).json()["data"]) == 1
    settled = await create(tenant, body, **{"Idempotency-Key": "storm"})
    assert settled.json()["id"] in created


async def test_a_create_still_running_answers_in_flight(tenant: Tenant, db: Database) -> None:
    """Hold the key's lock as a running request would, and retry meanwhile."""
    from sqlalchemy import func, select

    account = await sandbox_account(tenant)
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        name = f"idempotency:{tenant.id}:slow"
        assert await session.scalar(
            select(func.pg_try_advisory_xact_lock(func.hashtextextended(name, 0)))
        )
        retry = await create(tenant, draft_body(account), **{"Idempotency-Key": "slow"})
        assert_problem(retry, 409, "idempotency-in-flight")
    after = await create(tenant, draft_body(account), **{"Idempotency-Key": "slow"})
    assert after.status_code == 201


async def test_keys_are_validated_scoped_and_kept_a_day(
    tenant: Tenant, other_tenant: Tenant, clock: FakeClock
) -> None:
    account = await sandbox_account(tenant)
    body = draft_body(account)
    for refused in ("x" * 256, "x" * 10_000, "tab\tinside"):
        assert_problem(
            await create(tenant, body, **{"Idempotency-Key": refused}), 422, "validation-error"
        )
    assert (await create(tenant, body, **{"Idempotency-Key": "x" * 255})).status_code == 201
    first = await create(tenant, body, **{"Idempotency-Key": "daily"})
    theirs = await create(
        other_tenant,
        draft_body(await sandbox_account(other_tenant)),
        **{"Idempotency-Key": "daily"},
    )
    assert theirs.status_code == 201
    assert "idempotent-replayed" not in theirs.headers
    clock.advance(timedelta(hours=23, minutes=59))
    replay = await create(tenant, body, **{"Idempotency-Key": "daily"})
    assert replay.json()["id"] == first.json()["id"]
    clock.advance(timedelta(minutes=2))
    fresh = await create(tenant, body, **{"Idempotency-Key": "daily"})
    assert fresh.json()["id"] != first.json()["id"]


async def test_other_creates_are_idempotent_too(tenant: Tenant) -> None:
    for path, body in (
        ("/v1/social-accounts", {"platform": "sandbox"}),
        ("/v1/members", {"email": "i@example.com", "name": "I", "role": "viewer"}),
        ("/v1/api-keys", {"name": "idempotent"}),
    ):
        headers = {**tenant.auth, "Idempotency-Key": f"once-{path}"}
        first = await tenant.http.post(path, json=body, headers=headers)
        again = await tenant.http.post(path, json=body, headers=headers)
        assert first.status_code == 201, first.text
        assert again.content == first.content
        assert again.headers["idempotent-replayed"] == "true"


async def test_contributors_write_drafts_but_do_not_schedule(
    tenant: Tenant, clock: FakeClock
) -> None:
    account = await sandbox_account(tenant)
    contributor = await tenant.member_with_key("contributor")
    draft = await create(contributor, draft_body(account))
    assert draft.status_code == 201
    path = f"/v1/posts/{draft.json()['id']}"
    edited = await with_etag(
        contributor, "PATCH", path, draft.headers["etag"], json={"payload": {"text": "better"}}
    )
    assert edited.status_code == 200
    denied = await create(
        contributor, draft_body(account, status="scheduled", publish_at=at(clock, hours=1))
    )
    assert assert_problem(denied, 403, "permission-denied")["permission"] == "posts:schedule"
    response = await with_etag(
        contributor,
        "POST",
        f"{path}/schedule",
        edited.headers["etag"],
        json={"publish_at": at(clock, hours=1)},
    )
    assert_problem(response, 403, "permission-denied")
    assert_problem(await contributor.post(f"{path}/cancel"), 403, "permission-denied")
    assert_problem(await contributor.post(f"{path}/retry"), 403, "permission-denied")
    assert_problem(
        await with_etag(contributor, "DELETE", path, edited.headers["etag"]),
        403,
        "permission-denied",
    )
    scheduled = await create(
        tenant, draft_body(account, status="scheduled", publish_at=at(clock, hours=1))
    )
    response = await with_etag(
        contributor,
        "PATCH",
        f"/v1/posts/{scheduled.json()['id']}",
        scheduled.headers["etag"],
        json={"payload": {"text": "sneaky"}},
    )
    assert assert_problem(response, 403, "permission-denied")["permission"] == "posts:schedule"


async def test_viewers_only_read(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    post = await create(tenant, draft_body(account))
    viewer = await tenant.member_with_key("viewer")
    assert (await viewer.get(f"/v1/posts/{post.json()['id']}")).status_code == 200
    assert (await viewer.get("/v1/posts")).status_code == 200
    assert (
        assert_problem(await create(viewer, draft_body(account)), 403, "permission-denied")[
            "permission"
        ]
        == "posts:write"
    )
    response = await with_etag(
        viewer,
        "PATCH",
        f"/v1/posts/{post.json()['id']}",
        post.headers["etag"],
        json={"payload": {"text": "x"}},
    )
    assert_problem(response, 403, "permission-denied")


async def test_another_workspaces_posts_answer_404(tenant: Tenant, other_tenant: Tenant) -> None:
    theirs = await create(other_tenant, draft_body(await sandbox_account(other_tenant)))
    path, etag = f"/v1/posts/{theirs.json()['id']}", theirs.headers["etag"]
    assert_problem(await tenant.get(path), 404, "not-found")
    assert_problem(await tenant.get(f"{path}/deliveries"), 404, "not-found")
    for method, suffix in (
        ("PATCH", ""),
        ("POST", "/schedule"),
        ("POST", "/unschedule"),
        ("POST", "/cancel"),
        ("POST", "/retry"),
        ("DELETE", ""),
    ):
        body = {"payload": {"text": "x"}} if method == "PATCH" else None
        response = await with_etag(tenant, method, f"{path}{suffix}", etag, json=body)
        assert_problem(response, 404, "not-found")
    assert (await tenant.get("/v1/posts")).json()["data"] == []
    assert (await other_tenant.get(path)).json()["status"] == "draft"


async def draft_path(tenant: Tenant) -> str:
    created = await create(tenant, draft_body(await sandbox_account(tenant)))
    return f"/v1/posts/{created.json()['id']}"


async def test_reading_a_post_needs_a_usable_key_with_posts_read(
    tenant: Tenant, clock: FakeClock
) -> None:
    path = await draft_path(tenant)
    assert_problem(await tenant.http.get(path), 401, "unauthorized")
    bad = {"Authorization": "Bearer crier_sk_" + "x" * 43}
    assert_problem(await tenant.http.get(path, headers=bad), 401, "unauthorized")
    scoped = (
        await tenant.post("/v1/api-keys", json={"name": "ro", "scopes": ["workspace:read"]})
    ).json()
    denied = assert_problem(
        await tenant.http.get(path, headers={"Authorization": f"Bearer {scoped['key']}"}),
        403,
        "permission-denied",
    )
    assert denied["permission"] == "posts:read"
    revoked = (await tenant.post("/v1/api-keys", json={"name": "gone"})).json()
    assert (await tenant.delete(f"/v1/api-keys/{revoked['id']}")).status_code == 204
    auth = {"Authorization": f"Bearer {revoked['key']}"}
    assert_problem(await tenant.http.get(path, headers=auth), 401, "unauthorized")


async def test_reading_a_post_records_the_keys_use(tenant: Tenant, clock: FakeClock) -> None:
    path = await draft_path(tenant)
    key = (await tenant.post("/v1/api-keys", json={"name": "reader"})).json()
    clock.advance(timedelta(minutes=5))
    read = await tenant.http.get(path, headers={"Authorization": f"Bearer {key['key']}"})
    assert read.status_code == 200, read.text
    used = (await tenant.get(f"/v1/api-keys/{key['id']}")).json()["last_used_at"]
    assert datetime.fromisoformat(used) == clock.now()


async def upload(tenant: Tenant) -> str:
    response = await tenant.post(
        "/v1/media", files={"file": ("p.png", image_bytes("PNG"), "image/png")}
    )
    media_id: str = response.json()["id"]
    return media_id


async def usage(tenant: Tenant, media_id: str) -> int:
    count: int = (await tenant.get(f"/v1/media/{media_id}")).json()["usage_count"]
    return count


async def test_usage_count_follows_posts_exactly(tenant: Tenant, clock: FakeClock) -> None:
    account = await sandbox_account(tenant)
    a, b = await upload(tenant), await upload(tenant)
    with_a = {
        "payload": {"text": "pic", "media_ids": [a]},
        "targets": [{"social_account_id": account}],
    }
    one = await create(tenant, with_a)
    two = await create(tenant, {**with_a, "payload": {"text": "both", "media_ids": [a, b]}})
    assert (await usage(tenant, a), await usage(tenant, b)) == (2, 1)
    edited = await with_etag(
        tenant,
        "PATCH",
        f"/v1/posts/{one.json()['id']}",
        one.headers["etag"],
        json={"payload": {"text": "b", "media_ids": [b]}},
    )
    assert edited.status_code == 200
    assert (await usage(tenant, a), await usage(tenant, b)) == (1, 2)
    await tenant.post(f"/v1/posts/{two.json()['id']}/cancel")
    assert (await usage(tenant, a), await usage(tenant, b)) == (0, 1)
    await with_etag(tenant, "DELETE", f"/v1/posts/{one.json()['id']}", edited.headers["etag"])
    assert (await usage(tenant, a), await usage(tenant, b)) == (0, 0)


async def test_media_of_a_scheduled_post_cannot_be_deleted_until_it_is_done(
    tenant: Tenant, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(tenant)
    media = await upload(tenant)
    body = {
        "payload": {"text": "pic", "media_ids": [media]},
        "targets": [{"social_account_id": account}],
        "status": "scheduled",
        "publish_at": at(clock, hours=1),
    }
    first = (await create(tenant, body)).json()
    second = (await create(tenant, body)).json()
    problem = assert_problem(await tenant.delete(f"/v1/media/{media}"), 409, "media-in-use")
    assert problem["posts"] == sorted([first["id"], second["id"]])
    await tenant.post(f"/v1/posts/{first['id']}/cancel")
    await force_status(db, tenant, second["id"], "publishing")
    assert_problem(await tenant.delete(f"/v1/media/{media}"), 409, "media-in-use")
    await force_status(db, tenant, second["id"], "published")
    assert (await tenant.delete(f"/v1/media/{media}")).status_code == 204


async def test_a_draft_does_not_pin_its_media(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    media = await upload(tenant)
    draft = await create(
        tenant,
        {
            "payload": {"text": "x", "media_ids": [media]},
            "targets": [{"social_account_id": account}],
        },
    )
    assert (await tenant.delete(f"/v1/media/{media}")).status_code == 204
    response = await with_etag(
        tenant, "POST", f"/v1/posts/{draft.json()['id']}/schedule", draft.headers["etag"]
    )
    assert_problem(response, 422, "validation-error")


async def schedule_directly(db: Database, tenant: Tenant, publish_at: datetime, count: int) -> None:
    """Fill the month of `publish_at` with `count` scheduled posts, past the API."""
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        session.add_all(
            Post(
                workspace_id=UUID(tenant.id),
                author_id=UUID(tenant.owner_id),
                status="scheduled",
                publish_at=publish_at,
                payload={"text": "x"},
            )
            for _ in range(count)
        )


def ten_days_into_the_month(clock: FakeClock) -> datetime:
    """Day 10 of the clock's month (UTC), so that five days later is the same month."""
    return clock.now().replace(day=10)


async def test_scheduling_past_the_monthly_limit_is_403_and_leaves_the_key_free(
    make_tenant: MakeTenant, clock: FakeClock, db: Database
) -> None:
    tenant = await make_tenant(plan="free")
    clock.set(ten_days_into_the_month(clock))  # before connecting: tokens start now
    account = await sandbox_account(tenant)
    publish_at = clock.now() + timedelta(days=5)
    await schedule_directly(db, tenant, publish_at, 100)
    full = draft_body(account, status="scheduled", publish_at=publish_at.isoformat())
    refused = await create(tenant, full, **{"Idempotency-Key": "month"})  # refused at commit
    problem = assert_problem(refused, 403, "plan-limit-exceeded")
    assert (problem["limit"], problem["limit_value"]) == ("scheduled_posts_per_month", 100)
    next_month = (publish_at + timedelta(days=31)).isoformat()
    ok = await create(
        tenant,
        draft_body(account, status="scheduled", publish_at=next_month),
        **{"Idempotency-Key": "month"},
    )
    assert ok.status_code == 201, ok.text
    assert "idempotent-replayed" not in ok.headers
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        created = (
            await session.execute(
                select(Post.id).where(Post.payload["text"].astext == "Hello from Crier")
            )
        ).all()
    assert [str(p) for (p,) in created] == [ok.json()["id"]]  # the refused one left nothing


async def test_concurrent_creates_at_the_monthly_limit_take_only_the_slots_left(
    make_tenant: MakeTenant, clock: FakeClock, db: Database
) -> None:
    tenant = await make_tenant(plan="free")
    clock.set(ten_days_into_the_month(clock))  # before connecting: tokens start now
    account = await sandbox_account(tenant)
    media = await upload(tenant)
    publish_at = clock.now() + timedelta(days=5)
    await schedule_directly(db, tenant, publish_at, 98)
    body = draft_body(account, status="scheduled", publish_at=publish_at.isoformat())
    body["payload"]["media_ids"] = [media]
    responses = await asyncio.gather(*(create(tenant, body) for _ in range(6)))
    assert sorted(r.status_code for r in responses) == [201] * 2 + [403] * 4
    # The refused creates left nothing behind: no post, no target, no media use.
    assert (await tenant.get(f"/v1/media/{media}")).json()["usage_count"] == 2
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        posts = await session.scalar(select(func.count()).select_from(Post))
        targets = await session.scalar(select(func.count()).select_from(PostTarget))
    assert (posts, targets) == (100, 2)


async def test_concurrent_scheduled_creates_in_one_workspace_all_succeed(
    tenant: Tenant, clock: FakeClock
) -> None:
    account = await sandbox_account(tenant)
    body = draft_body(account, status="scheduled", publish_at=at(clock, hours=1))
    responses = await asyncio.gather(*(create(tenant, body) for _ in range(12)))
    assert [r.status_code for r in responses] == [201] * 12
    assert len((await tenant.get("/v1/posts", params={"status": "scheduled"})).json()["data"]) == 12


async def test_concurrent_member_and_account_creates_respect_the_limit(
    make_tenant: MakeTenant,
) -> None:
    tenant = await make_tenant(plan="free")  # 5 social accounts
    responses = await asyncio.gather(
        *(tenant.post("/v1/social-accounts", json={"platform": "sandbox"}) for _ in range(8))
    )
    assert sorted(r.status_code for r in responses) == [201] * 5 + [403] * 3
