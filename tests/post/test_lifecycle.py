"""Posts through the API: drafts, scheduling, editing with ETags, the lock, cancelling."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from uuid import UUID

from sqlalchemy import text

from crier.kit.db import Database
from tests.conftest import FakeClock, MakeTenant, Tenant, assert_problem
from tests.post.conftest import (
    at,
    create,
    draft_body,
    force_status,
    sandbox_account,
    utc,
    with_etag,
)
from tests.test_tenancy_sweep import read_a_review


async def test_a_draft_is_created_with_its_author_and_an_etag(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    response = await create(tenant, draft_body(account))
    assert response.status_code == 201, response.text
    post = response.json()
    assert post["status"] == "draft"
    assert post["author_id"] == tenant.owner_id
    assert post["payload"] == {"text": "Hello from Crier", "media_ids": []}
    assert [(t["social_account_id"], t["platform"]) for t in post["targets"]] == [
        (account, "sandbox")
    ]
    assert response.headers["location"] == f"/v1/posts/{post['id']}"
    fetched = await tenant.get(f"/v1/posts/{post['id']}")
    assert fetched.json() == post
    assert fetched.headers["etag"] == response.headers["etag"]


async def test_a_draft_may_carry_a_time_and_a_scheduled_post_must(
    tenant: Tenant, clock: FakeClock
) -> None:
    account = await sandbox_account(tenant)
    draft = await create(tenant, draft_body(account, publish_at=at(clock, hours=2)))
    assert draft.json()["status"] == "draft"
    assert draft.json()["publish_at"] is not None
    body = assert_problem(
        await create(tenant, draft_body(account, status="scheduled")), 422, "validation-error"
    )
    assert body["errors"][0]["loc"] == ["body", "publish_at"]  # type: ignore[index]


async def test_a_scheduled_post_answers_in_utc_and_local_time(
    make_tenant: MakeTenant, clock: FakeClock
) -> None:
    tenant = await make_tenant(timezone="America/New_York")
    account = await sandbox_account(tenant)
    clock.set(utc("2026-06-01T12:00:00+00:00"))
    response = await create(
        tenant, draft_body(account, status="scheduled", publish_at="2026-07-04T09:00:00-04:00")
    )
    assert response.status_code == 201, response.text
    post = response.json()
    assert post["status"] == "scheduled"
    assert post["publish_at"] == "2026-07-04T13:00:00Z"
    assert post["publish_at_local"] == "2026-07-04T09:00:00-04:00"
    assert post["timezone"] == "America/New_York"
    assert post["timezone_is_workspace_default"] is True
    assert post["warnings"] == []
    assert post["locked"] is False


async def test_a_post_may_have_its_own_timezone(tenant: Tenant, clock: FakeClock) -> None:
    account = await sandbox_account(tenant)
    clock.set(utc("2026-06-01T12:00:00+00:00"))
    post = (
        await create(
            tenant, draft_body(account, timezone="Asia/Tokyo", publish_at="2026-06-02T00:00:00Z")
        )
    ).json()
    assert post["timezone"] == "Asia/Tokyo"
    assert post["timezone_is_workspace_default"] is False
    assert post["publish_at_local"] == "2026-06-02T09:00:00+09:00"
    assert_problem(
        await create(tenant, draft_body(account, timezone="Tokyo")), 422, "validation-error"
    )


async def test_a_naive_timestamp_is_refused_showing_the_expected_form(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    response = await create(tenant, draft_body(account, publish_at="2026-10-21T12:00:00"))
    body = assert_problem(response, 422, "naive-timestamp")
    assert "2025-10-21T12:00:00-04:00" in str(body["expected_form"])
    assert body["errors"][0]["loc"] == ["body", "publish_at"]  # type: ignore[index]
    listed = await tenant.get("/v1/posts", params={"publish_after": "2026-10-21T12:00:00"})
    assert_problem(listed, 422, "naive-timestamp")


async def test_a_timestamp_beyond_the_representable_years_is_refused(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    for instant in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00Z"):
        body = assert_problem(
            await create(tenant, draft_body(account, publish_at=instant)), 422, "validation-error"
        )
        assert body["errors"][0]["type"] == "timestamp_out_of_range"  # type: ignore[index]
        assert body["errors"][0]["loc"] == ["body", "publish_at"]  # type: ignore[index]
        listed = await tenant.get("/v1/posts", params={"publish_before": instant})
        assert_problem(listed, 422, "validation-error")
    assert (await tenant.get("/v1/posts")).json()["data"] == []


async def test_a_dst_slip_is_accepted_for_the_exact_instant_with_a_warning(
    make_tenant: MakeTenant, clock: FakeClock
) -> None:
    tenant = await make_tenant(timezone="America/New_York")
    account = await sandbox_account(tenant)
    clock.set(utc("2026-11-01T12:00:00+00:00"))
    # December in New York is -05:00; a client still sending summer's -04:00:
    post = (
        await create(
            tenant, draft_body(account, status="scheduled", publish_at="2026-12-01T12:00:00-04:00")
        )
    ).json()
    assert post["status"] == "scheduled"
    assert post["publish_at"] == "2026-12-01T16:00:00Z"
    assert post["publish_at_local"] == "2026-12-01T11:00:00-05:00"
    [warning] = post["warnings"]
    assert warning["code"] == "offset_mismatch"
    assert "2026-12-01T11:00:00-05:00" in warning["message"]


async def test_scheduling_in_the_past_is_422_within_a_small_tolerance(
    tenant: Tenant, clock: FakeClock
) -> None:
    account = await sandbox_account(tenant)
    late = await create(
        tenant, draft_body(account, status="scheduled", publish_at=at(clock, minutes=-5))
    )
    assert_problem(late, 422, "publish-at-in-past")
    just_now = await create(
        tenant, draft_body(account, status="scheduled", publish_at=at(clock, seconds=-10))
    )
    assert just_now.status_code == 201


async def test_every_failing_target_is_reported_in_one_problem(
    tenant: Tenant, clock: FakeClock
) -> None:
    good = await sandbox_account(tenant)
    gone = await sandbox_account(tenant)
    assert (await tenant.delete(f"/v1/social-accounts/{gone}")).status_code == 204
    body = {
        "payload": {"text": "x" * 600},
        "targets": [{"social_account_id": good}, {"social_account_id": gone}],
        "status": "scheduled",
        "publish_at": at(clock, hours=1),
    }
    problem = assert_problem(await create(tenant, body), 422, "target-validation-failed")
    errors = problem["errors"]
    assert isinstance(errors, list)
    found = {(e["target"], e["type"]) for e in errors}
    assert found == {(good, "text_too_long"), (gone, "account_not_usable"), (gone, "text_too_long")}
    assert (await tenant.get("/v1/posts")).json()["data"] == []


async def test_an_expired_token_blocks_scheduling_unless_it_can_be_refreshed(
    tenant: Tenant, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(tenant)
    post = (await create(tenant, draft_body(account))).json()
    clock.advance(timedelta(days=61))  # past the access token's expiry
    response = await with_etag(
        tenant,
        "POST",
        f"/v1/posts/{post['id']}/schedule",
        '"1"',
        json={"publish_at": at(clock, hours=1)},
    )
    assert response.status_code == 200, response.text  # refreshed before it is sent
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        await session.execute(
            text("UPDATE social_accounts SET refresh_token = NULL WHERE id = :id"),
            {"id": account},
        )
    other = (await create(tenant, draft_body(account))).json()
    response = await with_etag(
        tenant,
        "POST",
        f"/v1/posts/{other['id']}/schedule",
        '"1"',
        json={"publish_at": at(clock, hours=1)},
    )
    problem = assert_problem(response, 422, "target-validation-failed")
    assert problem["errors"][0]["type"] == "account_not_usable"  # type: ignore[index]


async def test_a_scheduled_post_needs_a_target(tenant: Tenant, clock: FakeClock) -> None:
    body = {"payload": {"text": "hi"}, "status": "scheduled", "publish_at": at(clock, hours=1)}
    assert_problem(await create(tenant, body), 422, "validation-error")


async def test_references_must_belong_to_the_workspace(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    theirs = await sandbox_account(other_tenant)
    problem = assert_problem(await create(tenant, draft_body(theirs)), 422, "validation-error")
    assert problem["errors"][0]["loc"] == [  # type: ignore[index]
        "body",
        "targets",
        0,
        "social_account_id",
    ]
    mine = await sandbox_account(tenant)
    body = {"payload": {"text": "x", "media_ids": [mine]}, "targets": [{"social_account_id": mine}]}
    problem = assert_problem(await create(tenant, body), 422, "validation-error")
    assert problem["errors"][0]["type"] == "unknown_media"  # type: ignore[index]


async def test_malformed_posts_are_422(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    for body in (
        {"payload": {"text": 5}},
        {"payload": {"text": "x"}, "status": "published"},
        {"payload": {"text": "x"}, "targets": [{"social_account_id": account}] * 2},
        {"payload": {"text": "x", "media_ids": ["not-a-uuid"]}},
        {"payload": {"text": "x"}, "extra": True},
        {"payload": {"text": "x"}, "publish_at": "tomorrow"},
    ):
        assert_problem(await create(tenant, body), 422, "validation-error")


async def test_edits_need_the_current_etag(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    created = await create(tenant, draft_body(account))
    path, etag = f"/v1/posts/{created.json()['id']}", created.headers["etag"]
    change = {"payload": {"text": "Edited"}}
    assert_problem(
        await with_etag(tenant, "PATCH", path, None, json=change), 428, "precondition-required"
    )
    assert_problem(
        await with_etag(tenant, "PATCH", path, '"999"', json=change), 412, "precondition-failed"
    )
    assert_problem(
        await with_etag(tenant, "PATCH", path, f"W/{etag}", json=change), 412, "precondition-failed"
    )
    for garbage in ("undefined", "1", '"unterminated', "*, *"):  # not entity tags: malformed
        body = assert_problem(
            await with_etag(tenant, "PATCH", path, garbage, json=change), 422, "validation-error"
        )
        assert body["errors"][0]["loc"] == ["header", "If-Match"]  # type: ignore[index]
    assert (await tenant.get(path)).json()["payload"]["text"] == "Hello from Crier"
    edited = await with_etag(tenant, "PATCH", path, etag, json=change)
    assert edited.status_code == 200, edited.text
    assert edited.json()["payload"]["text"] == "Edited"
    assert edited.headers["etag"] != etag
    assert edited.json()["version"] == created.json()["version"] + 1


async def test_two_editors_cannot_overwrite_each_other(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    created = await create(tenant, draft_body(account))
    path, etag = f"/v1/posts/{created.json()['id']}", created.headers["etag"]
    first, second = await asyncio.gather(
        with_etag(tenant, "PATCH", path, etag, json={"payload": {"text": "Alice"}}),
        with_etag(tenant, "PATCH", path, etag, json={"payload": {"text": "Bob"}}),
    )
    statuses = sorted([first.status_code, second.status_code])
    assert statuses == [200, 412]
    winner = first if first.status_code == 200 else second
    assert (await tenant.get(path)).json()["payload"] == winner.json()["payload"]


async def test_a_patch_can_replace_targets_and_clear_a_drafts_time(
    tenant: Tenant, clock: FakeClock
) -> None:
    one, two = await sandbox_account(tenant), await sandbox_account(tenant)
    created = await create(tenant, draft_body(one, publish_at=at(clock, hours=3)))
    path = f"/v1/posts/{created.json()['id']}"
    response = await with_etag(
        tenant,
        "PATCH",
        path,
        created.headers["etag"],
        json={
            "targets": [{"social_account_id": two, "platform_settings": {"first_comment": "hi"}}],
            "publish_at": None,
        },
    )
    post = response.json()
    assert [t["social_account_id"] for t in post["targets"]] == [two]
    assert post["targets"][0]["platform_settings"] == {"first_comment": "hi"}
    assert post["publish_at"] is None
    filtered = await tenant.get("/v1/posts", params={"social_account_id": two})
    assert [p["id"] for p in filtered.json()["data"]] == [post["id"]]
    assert (await tenant.get("/v1/posts", params={"social_account_id": one})).json()["data"] == []


async def test_schedule_unschedule_and_reschedule(tenant: Tenant, clock: FakeClock) -> None:
    account = await sandbox_account(tenant)
    created = await create(tenant, draft_body(account))
    path = f"/v1/posts/{created.json()['id']}"
    scheduled = await with_etag(
        tenant,
        "POST",
        f"{path}/schedule",
        created.headers["etag"],
        json={"publish_at": at(clock, hours=1)},
    )
    assert scheduled.json()["status"] == "scheduled", scheduled.text
    moved = await with_etag(
        tenant,
        "POST",
        f"{path}/schedule",
        scheduled.headers["etag"],
        json={"publish_at": at(clock, hours=2)},
    )
    assert moved.status_code == 200
    assert utc(moved.json()["publish_at"]) > utc(scheduled.json()["publish_at"])
    back = await with_etag(tenant, "POST", f"{path}/unschedule", moved.headers["etag"])
    assert back.json()["status"] == "draft"
    again = await with_etag(tenant, "POST", f"{path}/unschedule", back.headers["etag"])
    assert_problem(again, 409, "post-not-editable")


async def test_within_five_minutes_a_scheduled_post_is_locked(
    tenant: Tenant, clock: FakeClock
) -> None:
    account = await sandbox_account(tenant)
    created = await create(
        tenant, draft_body(account, status="scheduled", publish_at=at(clock, minutes=10))
    )
    path, etag = f"/v1/posts/{created.json()['id']}", created.headers["etag"]
    clock.advance(timedelta(minutes=4, seconds=59))
    assert (await tenant.get(path)).json()["locked"] is False
    clock.advance(timedelta(seconds=1))
    assert (await tenant.get(path)).json()["locked"] is True
    for method, suffix, body in (
        ("PATCH", "", {"payload": {"text": "late edit"}}),
        ("POST", "/schedule", {"publish_at": at(clock, hours=1)}),
        ("POST", "/unschedule", None),
        ("DELETE", "", None),
    ):
        response = await with_etag(tenant, method, f"{path}{suffix}", etag, json=body)
        problem = assert_problem(response, 409, "post-locked")
        assert problem["locked_since"]
    assert (await tenant.get(path)).json()["payload"]["text"] == "Hello from Crier"


async def test_cancel_in_the_last_seconds_records_who_and_when(
    tenant: Tenant, clock: FakeClock
) -> None:
    account = await sandbox_account(tenant)
    created = await create(
        tenant, draft_body(account, status="scheduled", publish_at=at(clock, minutes=10))
    )
    path = f"/v1/posts/{created.json()['id']}"
    clock.advance(timedelta(minutes=9, seconds=59))
    cancelled = await tenant.post(f"{path}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    post = cancelled.json()
    assert post["status"] == "cancelled"
    assert post["cancelled_by"] == tenant.owner_id
    assert utc(post["cancelled_at"]) == clock.now()
    listed = await tenant.get("/v1/posts", params={"status": "scheduled"})
    assert listed.json()["data"] == []
    assert (await tenant.post(f"{path}/cancel")).json()["status"] == "cancelled"
    edit = await with_etag(
        tenant, "PATCH", path, cancelled.headers["etag"], json={"payload": {"text": "x"}}
    )
    assert_problem(edit, 409, "post-not-editable")


async def test_once_publishing_has_begun_cancel_is_refused(
    tenant: Tenant, clock: FakeClock, db: Database
) -> None:
    account = await sandbox_account(tenant)
    post = (
        await create(
            tenant, draft_body(account, status="scheduled", publish_at=at(clock, minutes=10))
        )
    ).json()
    for status in ("publishing", "published", "failed"):
        await force_status(db, tenant, post["id"], status)
        assert_problem(
            await tenant.post(f"/v1/posts/{post['id']}/cancel"), 409, "post-not-cancellable"
        )
    await force_status(db, tenant, post["id"], "queued")
    assert (await tenant.post(f"/v1/posts/{post['id']}/cancel")).json()["status"] == "cancelled"


async def test_cancel_with_a_stale_etag_is_412(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    post = (await create(tenant, draft_body(account))).json()
    response = await with_etag(tenant, "POST", f"/v1/posts/{post['id']}/cancel", '"7"')
    assert_problem(response, 412, "precondition-failed")


async def test_only_drafts_are_deleted(tenant: Tenant, clock: FakeClock) -> None:
    account = await sandbox_account(tenant)
    draft = await create(tenant, draft_body(account))
    path = f"/v1/posts/{draft.json()['id']}"
    assert_problem(await with_etag(tenant, "DELETE", path, None), 428, "precondition-required")
    assert (await with_etag(tenant, "DELETE", path, draft.headers["etag"])).status_code == 204
    assert_problem(await tenant.get(path), 404, "not-found")
    scheduled = await create(
        tenant, draft_body(account, status="scheduled", publish_at=at(clock, hours=1))
    )
    response = await with_etag(
        tenant, "DELETE", f"/v1/posts/{scheduled.json()['id']}", scheduled.headers["etag"]
    )
    assert_problem(response, 409, "post-not-deletable")
    cancelled = await with_etag(
        tenant, "POST", f"/v1/posts/{scheduled.json()['id']}/cancel", scheduled.headers["etag"]
    )
    response = await with_etag(
        tenant, "DELETE", f"/v1/posts/{scheduled.json()['id']}", cancelled.headers["etag"]
    )
    assert_problem(response, 409, "post-not-deletable")
    assert (await tenant.get(f"/v1/posts/{scheduled.json()['id']}")).json()["status"] == "cancelled"


async def test_deliveries_are_empty_until_something_is_sent(tenant: Tenant) -> None:
    account = await sandbox_account(tenant)
    post = (await create(tenant, draft_body(account))).json()
    assert (await tenant.get(f"/v1/posts/{post['id']}/deliveries")).json() == {
        "data": [],
        "next_cursor": None,
    }


async def test_list_filters_and_pages_in_a_stable_order(tenant: Tenant, clock: FakeClock) -> None:
    account = await sandbox_account(tenant)
    ids = []
    for hours in (3, 1, 2):
        post = await create(
            tenant, draft_body(account, status="scheduled", publish_at=at(clock, hours=hours))
        )
        ids.append(post.json()["id"])
    draft = (await create(tenant, draft_body(account))).json()["id"]
    page1 = (await tenant.get("/v1/posts", params={"limit": 2})).json()
    page2 = (
        await tenant.get("/v1/posts", params={"limit": 2, "cursor": page1["next_cursor"]})
    ).json()
    assert [p["id"] for p in page1["data"] + page2["data"]] == [*ids, draft]
    assert page2["next_cursor"] is None
    scheduled = (await tenant.get("/v1/posts", params={"status": "scheduled"})).json()["data"]
    assert [p["id"] for p in scheduled] == ids
    window = await tenant.get(
        "/v1/posts",
        params={"publish_after": at(clock, minutes=90), "publish_before": at(clock, minutes=150)},
    )
    assert [p["id"] for p in window.json()["data"]] == [ids[2]]
    both = await tenant.get("/v1/posts", params=[("status", "draft"), ("status", "scheduled")])
    assert len(both.json()["data"]) == 4


async def test_if_match_is_documented_as_it_is_enforced(tenant: Tenant) -> None:
    """Where the description says If-Match is required, its absence is 428; where it says
    optional, it is not; an empty one is 428 everywhere, and every such operation lists 428."""
    schema = (await tenant.http.get("/openapi.json")).json()
    account = await sandbox_account(tenant)
    review = await read_a_review(tenant, account)
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            [declared] = [
                p for p in operation.get("parameters", []) if p["name"] == "If-Match"
            ] or [None]
            if declared is None:
                continue
            where = f"{method.upper()} {path}"
            assert "428" in operation["responses"], where
            post = (await create(tenant, draft_body(account))).json()
            url = path.replace("{post_id}", post["id"]).replace("{review_id}", review)
            for etag in (None, ""):
                headers = {**tenant.auth, **({} if etag is None else {"If-Match": etag})}
                # A valid body where one is taken, so that the answer is about the header.
                body: dict[str, object] | None = (
                    ({"text": "Hi"} if path.endswith("/reply") else {})
                    if "requestBody" in operation
                    else None
                )
                answer = await tenant.http.request(method, url, headers=headers, json=body)
                if etag is None and not declared["required"]:
                    assert answer.status_code != 428, where
                else:
                    assert_problem(answer, 428, "precondition-required")
            checked += 1
    # Posts: PATCH, DELETE, schedule, unschedule, cancel, retry; a review's reply: PUT, DELETE.
    assert checked == 8
