"""Reviews for tests: a sandbox location, its reviews added through the sandbox's control
API, and the workers' review syncer on the test clock."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from crier.kit.db import Database
from crier.kit.storage import LocalStorage
from crier.kit.vault import Vault
from crier.models import WebhookEvent
from crier.review.sending import ReplySender
from crier.review.tasks import ReviewSyncer
from crier.runtime import Runtime
from tests.conftest import FakeClock, Tenant, build_runtime
from tests.google import Google
from tests.post.conftest import sandbox_account


@pytest.fixture
async def runtime(
    db: Database,
    vault: Vault,
    storage: LocalStorage,
    clock: FakeClock,
    sandbox_url: str,
    google_server: Google,
    tmp_path: Path,
) -> AsyncIterator[Runtime]:
    built = build_runtime(
        db, vault, storage, clock, sandbox_url, tmp_path, httpx.Timeout(2.0), google=google_server
    )
    yield built
    await built.close()


NewSyncer = Callable[..., ReviewSyncer]


@pytest.fixture
def new_syncer(runtime: Runtime, scheduler_db: Database, clock: FakeClock) -> NewSyncer:
    """Another worker's review syncer, with these options (`pages_per_run`, `every`...)."""

    def make(**options: Any) -> ReviewSyncer:
        return ReviewSyncer(
            runtime.db, scheduler_db, runtime.platforms, runtime.vault, clock, **options
        )

    return make


@pytest.fixture
def syncer(runtime: Runtime, scheduler_db: Database) -> ReviewSyncer:
    """The review syncer of a worker (which refreshes tokens through the worker's sender)."""
    return runtime.worker(scheduler_db, worker_id="review-worker").reviews


@pytest.fixture
def sender(runtime: Runtime, scheduler_db: Database) -> ReplySender:
    """The reply sender of a worker (which refreshes tokens through the worker's sender)."""
    return runtime.worker(scheduler_db, worker_id="reply-worker").replies


NewSender = Callable[..., ReplySender]


@pytest.fixture
def new_sender(runtime: Runtime, scheduler_db: Database, clock: FakeClock) -> NewSender:
    """Another worker's reply sender, with these options (`attempts`, `policy`...)."""

    def make(**options: Any) -> ReplySender:
        return ReplySender(
            runtime.db, scheduler_db, runtime.platforms, runtime.vault, clock, **options
        )

    return make


async def events_of(db: Database, tenant: Tenant, type_: str) -> list[dict[str, Any]]:
    """The `data` of the tenant's events of this type, oldest first."""
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        found = await session.scalars(
            select(WebhookEvent).where(WebhookEvent.type == type_).order_by(WebhookEvent.id)
        )
        return [e.payload["data"] for e in found]


@pytest.fixture
async def control(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's control API; its faults are cleared after the test."""
    async with httpx.AsyncClient(base_url=sandbox_url) as client:
        yield client
        await client.delete("/control/faults")


@dataclass
class Location:
    """A sandbox account of the tenant, which is also a location with reviews."""

    tenant: Tenant
    account_id: str
    external_id: str
    control: httpx.AsyncClient

    @property
    def workspace(self) -> UUID:
        return UUID(self.tenant.id)

    async def review(self, rating: int, comment: str | None = None, **fields: Any) -> str:
        """A customer reviews the location on the network; the review's id there."""
        body = {"rating": rating, "comment": comment, "reviewer_name": "Ada"} | fields
        made = await self.control.post(f"/control/accounts/{self.external_id}/reviews", json=body)
        assert made.status_code == 201, made.text
        review_id: str = made.json()["id"]
        return review_id

    async def edit(self, review_id: str, **fields: Any) -> None:
        edited = await self.control.patch(f"/control/reviews/{review_id}", json=fields)
        assert edited.status_code == 200, edited.text

    async def remove(self, review_id: str) -> None:
        removed = await self.control.delete(f"/control/reviews/{review_id}")
        assert removed.status_code == 204, removed.text


async def new_location(tenant: Tenant, control: httpx.AsyncClient) -> Location:
    account_id = await sandbox_account(tenant)
    account = (await tenant.get(f"/v1/social-accounts/{account_id}")).json()
    return Location(tenant, account_id, account["external_id"], control)


@pytest.fixture
async def location(tenant: Tenant, control: httpx.AsyncClient) -> Location:
    return await new_location(tenant, control)


async def feed(tenant: Tenant, cursor: str | None = None, **params: Any) -> dict[str, Any]:
    """One call of the review feed."""
    query = params | ({"cursor": cursor} if cursor else {})
    response = await tenant.get("/v1/reviews", params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def whole_feed(
    tenant: Tenant, cursor: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every review the feed has after `cursor`, following `next_cursor` (with a small
    limit, so that it pages), and the cursor to go on from."""
    seen: list[dict[str, Any]] = []
    for _ in range(1000):
        page = await feed(tenant, cursor, limit=7, **params)
        seen.extend(page["data"])
        cursor = page["next_cursor"]
        if not page["has_more"]:
            assert cursor is not None
            return seen, cursor
    raise AssertionError("the feed did not end")


async def review_calls(control: httpx.AsyncClient) -> int:
    """How many pages of reviews the sandbox has served (or refused) so far."""
    calls: dict[str, int] = (await control.get("/control/calls")).json()
    return calls.get("GET /v1/reviews", 0)
