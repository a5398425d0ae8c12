"""Request bodies: a size limit, and JSON refused whole when it holds what cannot be stored.
Every refusal is a problem naming where, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select

from crier.kit.body import JSON_BODY_LIMIT, MAX_DEPTH
from crier.kit.db import Database
from crier.models import Post
from tests.conftest import MakeTenant, Tenant, assert_problem
from tests.post.conftest import draft_body, sandbox_account

JSON = {"Content-Type": "application/json"}


async def send(tenant: Tenant, method: str, path: str, raw: bytes | Any) -> Any:
    return await tenant.http.request(method, path, content=raw, headers={**tenant.auth, **JSON})


async def post_count(db: Database, tenant: Tenant) -> int:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        return int(await session.scalar(select(func.count()).select_from(Post)) or 0)


def settings_body(account: str, settings: Any) -> bytes:
    body = draft_body(account)
    body["targets"][0]["platform_settings"] = settings
    return json.dumps(body).encode()


async def test_a_body_over_the_limit_is_413_before_it_is_read(tenant: Tenant, db: Database) -> None:
    account = await sandbox_account(tenant)
    huge = settings_body(account, {"note": "x" * (10 * 1024 * 1024)})
    problem = assert_problem(
        await send(tenant, "POST", "/v1/posts", huge), 413, "payload-too-large"
    )
    assert "1 MiB" in str(problem["detail"]) or problem["detail"]
    assert await post_count(db, tenant) == 0


async def test_a_chunked_body_over_the_limit_is_413_too(tenant: Tenant, db: Database) -> None:
    account = await sandbox_account(tenant)
    raw = settings_body(account, {"note": "x" * (2 * JSON_BODY_LIMIT)})

    async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: the server must count
        for start in range(0, len(raw), 64 * 1024):
            yield raw[start : start + 64 * 1024]

    response = await tenant.http.post(
        "/v1/posts", content=chunks(), headers={**tenant.auth, **JSON}
    )
    assert_problem(response, 413, "payload-too-large")
    assert await post_count(db, tenant) == 0


async def test_large_bodies_leave_every_workspace_served(
    make_tenant: MakeTenant, db: Database
) -> None:
    """Bodies just under the limit, more at once than the pool has connections, and bodies
    over it: each gets its answer, and then another workspace is served at once."""
    tenant, bystander = await make_tenant(plan="pro"), await make_tenant()
    account = await sandbox_account(tenant)
    near_limit = settings_body(account, {"note": "x" * (JSON_BODY_LIMIT - 4096)})
    over_limit = settings_body(account, {"note": "x" * (2 * JSON_BODY_LIMIT + 100_000)})
    async with asyncio.timeout(60):
        answers = await asyncio.gather(
            *(send(tenant, "POST", "/v1/posts", near_limit) for _ in range(24)),
            *(send(tenant, "POST", "/v1/posts", over_limit) for _ in range(24)),
        )
    assert sorted(a.status_code for a in answers) == [201] * 24 + [413] * 24
    async with asyncio.timeout(5):
        assert (await bystander.get("/v1/workspace")).status_code == 200
        assert (await tenant.get("/v1/posts")).status_code == 200
    assert await post_count(db, tenant) == 24


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b'{"payload": {"text": "caf\xe9"}}', "not UTF-8"),
        (b'{"payload": ', "not JSON"),
        (b'{"payload": {"text": "x"}, "targets": NaN}', "NaN is not a JSON number"),
        (b'{"targets": [{"platform_settings": {"n": Infinity}}]}', "Infinity"),
        (b'{"targets": [{"platform_settings": {"n": -Infinity}}]}', "-Infinity"),
        (b"[" * 100_000 + b"]" * 100_000, "nests deeper"),
    ],
)
async def test_a_body_that_is_not_json_is_400(
    tenant: Tenant, db: Database, raw: bytes, says: str
) -> None:
    problem = assert_problem(await send(tenant, "POST", "/v1/posts", raw), 400, "bad-request")
    assert says in str(problem["detail"])
    assert await post_count(db, tenant) == 0


def nested(depth: int) -> Any:
    value: Any = "deep"
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.mark.parametrize(
    ("settings", "loc", "kind"),
    [
        ({"note": "a\x00b"}, ["note"], "unstorable_text"),
        ({"a\x00": "b"}, [], "unstorable_text"),
        ({"lone": "\ud800"}, ["lone"], "unstorable_text"),
        ({"n": 1e999}, ["n"], "finite_number"),
        (nested(900), ["k"] * (MAX_DEPTH - 2), "too_deep"),
    ],
)
async def test_platform_settings_that_cannot_be_stored_are_422_where_they_are(
    tenant: Tenant, db: Database, settings: Any, loc: list[str], kind: str
) -> None:
    account = await sandbox_account(tenant)
    body = draft_body(account)
    body["targets"][0]["platform_settings"] = settings
    raw = json.dumps(body).encode()  # json.dumps writes a lone surrogate as its \u escape
    if kind == "finite_number":
        raw = raw.replace(b"Infinity", b"1e999")
    problem = assert_problem(await send(tenant, "POST", "/v1/posts", raw), 422, "validation-error")
    errors: list[dict[str, Any]] = problem["errors"]  # type: ignore[assignment]
    [error] = errors
    assert error["type"] == kind
    assert error["loc"] == ["body", "targets", 0, "platform_settings", *loc]
    assert await post_count(db, tenant) == 0


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/v1/posts", {"payload": {"text": "hello\x00"}, "targets": []}),
        ("POST", "/v1/members", {"email": "n@example.com", "name": "N\x00", "role": "viewer"}),
        ("POST", "/v1/api-keys", {"name": "ci\x00"}),
        ("PATCH", "/v1/workspace", {"name": "Acme\x00"}),
        ("POST", "/v1/webhook-endpoints", {"url": "https://example.com/h", "description": "\x00"}),
        ("POST", "/v1/social-accounts", {"platform": "sandbox", "display_name": "\x00"}),
    ],
)
async def test_a_nul_in_any_stored_text_is_422(
    tenant: Tenant, method: str, path: str, body: dict[str, Any]
) -> None:
    response = await send(tenant, method, path, json.dumps(body).encode())
    problem = assert_problem(response, 422, "validation-error")
    assert problem["errors"][0]["type"] == "unstorable_text"  # type: ignore[index]
    assert (await tenant.get("/v1/workspace")).json()["name"].isprintable()
