"""Reply templates: placeholders checked when saved, filled from the review replied to."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest

from crier.review.sending import ReplySender
from crier.review.tasks import ReviewSyncer
from crier.review.templates import TemplateError, check, render
from tests.conftest import Tenant, assert_problem
from tests.review.conftest import Location
from tests.review.test_replies import one_review, put_reply, read

VALUES = {"reviewer_name": "Ada", "location_name": "Cafe Nord", "rating": "5"}


@pytest.mark.parametrize(
    ("text", "values", "expected"),
    [
        ("Thank you, {reviewer_name}!", VALUES, "Thank you, Ada!"),
        ("{rating} stars at {location_name}", VALUES, "5 stars at Cafe Nord"),
        ("Hi {reviewer_name|there}!", VALUES | {"reviewer_name": None}, "Hi there!"),
        ("Hi {reviewer_name|there}!", VALUES, "Hi Ada!"),
        ("Hi {reviewer_name},", VALUES | {"reviewer_name": ""}, "Hi ,"),
        ("{{literally}} {rating}", VALUES, "{literally} 5"),
        ("No placeholders at all.", VALUES, "No placeholders at all."),
    ],
)
def test_templates_fill_placeholders_fallbacks_and_escaped_braces(
    text: str, values: dict[str, str | None], expected: str
) -> None:
    check(text)
    assert render(text, values) == expected


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("Thanks {name}", "Unknown placeholder {name}"),
        ("Thanks {reviewer_name", "lone '{'"),
        ("Thanks reviewer_name}", "lone '}'"),
        ("Thanks {}", "Unknown placeholder {}"),
        ("Thanks {Rating}", "Unknown placeholder {Rating}"),
    ],
)
def test_a_template_with_an_unknown_placeholder_or_a_lone_brace_is_refused(
    text: str, says: str
) -> None:
    with pytest.raises(TemplateError, match=says.replace("{", r"\{").replace("}", r"\}")):
        check(text)


async def make(tenant: Tenant, **body: Any) -> dict[str, Any]:
    made = await tenant.post("/v1/review-templates", json=body)
    assert made.status_code == 201, made.text
    assert made.headers["location"] == f"/v1/review-templates/{made.json()['id']}"
    created: dict[str, Any] = made.json()
    return created


async def test_templates_are_created_listed_changed_and_deleted(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    thanks = await make(tenant, name="Thanks", text="Thank you, {reviewer_name|there}!")
    sorry = await make(tenant, name="Sorry", text="Sorry about your {rating}-star visit.")
    listed = (await tenant.get("/v1/review-templates")).json()
    assert [t["id"] for t in listed["data"]] == [thanks["id"], sorry["id"]]
    assert listed["next_cursor"] is None
    first = (await tenant.get("/v1/review-templates", params={"limit": 1})).json()
    assert [t["id"] for t in first["data"]] == [thanks["id"]]
    rest = await tenant.get("/v1/review-templates", params={"cursor": first["next_cursor"]})
    assert [t["id"] for t in rest.json()["data"]] == [sorry["id"]]

    changed = await tenant.patch(f"/v1/review-templates/{sorry['id']}", json={"text": "Sorry!"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["text"] == "Sorry!"
    assert changed.json()["name"] == "Sorry"
    assert (await tenant.get(f"/v1/review-templates/{sorry['id']}")).json()["text"] == "Sorry!"

    assert_problem(
        await tenant.post("/v1/review-templates", json={"name": "Thanks", "text": "Hi"}),
        409,
        "template-name-taken",
    )
    assert_problem(
        await tenant.patch(f"/v1/review-templates/{sorry['id']}", json={"name": "Thanks"}),
        409,
        "template-name-taken",
    )
    # Another workspace may use the name, and sees none of these.
    await make(other_tenant, name="Thanks", text="Danke!")
    for path in (f"/v1/review-templates/{thanks['id']}",):
        assert_problem(await other_tenant.get(path), 404, "not-found")
        assert_problem(await other_tenant.patch(path, json={"text": "x"}), 404, "not-found")
        assert_problem(await other_tenant.delete(path), 404, "not-found")
    assert [t["name"] for t in (await other_tenant.get("/v1/review-templates")).json()["data"]] == [
        "Thanks"
    ]

    assert (await tenant.delete(f"/v1/review-templates/{sorry['id']}")).status_code == 204
    assert_problem(await tenant.get(f"/v1/review-templates/{sorry['id']}"), 404, "not-found")
    assert_problem(await tenant.delete(f"/v1/review-templates/{sorry['id']}"), 404, "not-found")


async def test_bad_templates_are_clear_problems(tenant: Tenant) -> None:
    for body in (
        {"name": "x", "text": "Thanks {customer}"},
        {"name": "x", "text": "Thanks {reviewer_name"},
        {"name": "x", "text": "   "},
        {"name": "", "text": "Hi"},
        {"name": "x"},
        {"name": "x", "text": "é" * 2049},
        {"name": "x", "text": "Hi", "tone": "warm"},
    ):
        problem = assert_problem(
            await tenant.post("/v1/review-templates", json=body), 422, "validation-error"
        )
        assert problem["errors"], body
    made = await make(tenant, name="Fine", text="Hi")
    path = f"/v1/review-templates/{made['id']}"
    for update in ({"text": "{oops}"}, {"text": " "}, {"name": ""}, {"tone": "warm"}):
        assert_problem(await tenant.patch(path, json=update), 422, "validation-error")
    for nothing in ({}, {"name": None, "text": None}):  # left out or null: as it was
        same = await tenant.patch(path, json=nothing)
        assert same.status_code == 200, same.text
        assert (same.json()["name"], same.json()["text"]) == ("Fine", "Hi")
    assert_problem(await tenant.get("/v1/review-templates/nope"), 422, "validation-error")
    assert_problem(await tenant.get(f"/v1/review-templates/{uuid4()}"), 404, "not-found")


async def test_a_reply_made_from_a_template_is_filled_from_the_review(
    location: Location, syncer: ReviewSyncer, sender: ReplySender, other_tenant: Tenant
) -> None:
    tenant = location.tenant
    named = await one_review(location, syncer, 5, "Great", reviewer_name="Ada")
    anonymous = await one_review(location, syncer, 4, "Good", reviewer_name=None)
    template = await make(
        tenant, name="Thanks", text="Thank you for the {rating} stars, {reviewer_name|friend}!"
    )
    preview = await tenant.post(
        f"/v1/review-templates/{template['id']}/preview", json={"review_id": anonymous}
    )
    assert preview.status_code == 200, preview.text
    assert preview.json() == {"text": "Thank you for the 4 stars, friend!"}

    _, etag = await read(tenant, named)
    asked = await put_reply(tenant, named, etag, template_id=template["id"])
    assert asked.status_code == 202, asked.text
    await sender.sweep()
    body, _ = await read(tenant, named)
    assert body["reply"]["text"] == "Thank you for the 5 stars, Ada!"
    assert body["replies"][0]["template_id"] == template["id"]

    # Another workspace's template is not there for this one, nor this one's for it.
    theirs = await make(other_tenant, name="Theirs", text="Hi")
    _, etag = await read(tenant, anonymous)
    assert_problem(
        await put_reply(tenant, anonymous, etag, template_id=theirs["id"]), 422, "validation-error"
    )
    assert_problem(
        await other_tenant.post(
            f"/v1/review-templates/{theirs['id']}/preview", json={"review_id": anonymous}
        ),
        404,
        "not-found",
    )


async def test_templates_are_read_with_reviews_read_and_written_with_reviews_reply(
    tenant: Tenant,
) -> None:
    made = await make(tenant, name="Thanks", text="Thanks!")
    viewer = await tenant.member_with_key("viewer")
    assert (await viewer.get("/v1/review-templates")).status_code == 200
    assert (await viewer.get(f"/v1/review-templates/{made['id']}")).status_code == 200
    path = f"/v1/review-templates/{made['id']}"
    for response in (
        await viewer.post("/v1/review-templates", json={"name": "Mine", "text": "Hi"}),
        await viewer.patch(path, json={"text": "Hi"}),
        await viewer.delete(path),
    ):
        assert_problem(response, 403, "permission-denied")
