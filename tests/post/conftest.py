"""Helpers for post tests: accounts to target, times relative to the test clock."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import httpx

from crier.kit.db import Database
from crier.models import Post
from tests.conftest import FakeClock, Tenant


async def sandbox_account(tenant: Tenant, **extra: Any) -> str:
    response = await tenant.post("/v1/social-accounts", json={"platform": "sandbox", **extra})
    assert response.status_code == 201, response.text
    account_id: str = response.json()["id"]
    return account_id


def at(clock: FakeClock, **delta: float) -> str:
    """An ISO 8601 instant relative to the test clock, with offset."""
    return (clock.now() + timedelta(**delta)).isoformat()


def draft_body(account: str, **fields: Any) -> dict[str, Any]:
    return {
        "payload": {"text": "Hello from Crier"},
        "targets": [{"social_account_id": account}],
        **fields,
    }


async def create(tenant: Tenant, body: dict[str, Any], **headers: str) -> httpx.Response:
    return await tenant.http.post("/v1/posts", json=body, headers={**tenant.auth, **headers})


async def with_etag(
    tenant: Tenant, method: str, path: str, etag: str | None, **kw: Any
) -> httpx.Response:
    headers = {**tenant.auth, **({"If-Match": etag} if etag else {})}
    return await tenant.http.request(method, path, headers=headers, **kw)


async def force_status(db: Database, tenant: Tenant, post_id: str, status: str) -> None:
    """Put a post in a state only the scheduler reaches (setting up, not mocking)."""
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        post = await session.get(Post, (UUID(tenant.id), UUID(post_id)))
        assert post is not None
        post.status = status
        post.version += 1


def utc(value: str) -> datetime:
    return datetime.fromisoformat(value)
