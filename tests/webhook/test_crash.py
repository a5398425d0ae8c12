"""Webhooks from real `crier worker` processes, one killed mid-run, to a receiver that is
down, then slow, then healthy: every event arrives, signed, in each post's order."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crier.kit.db import Database
from crier.kit.vault import Vault
from crier.models import WebhookEvent
from tests.conftest import MakeTenant
from tests.scheduler.test_crash import (
    Platform,
    Workers,
    account_on,
    all_published,
    eventually,
    platform,
    schedule_many,
    workers,
)
from tests.servers import serving
from tests.webhook.conftest import Call, add_endpoint

__all__ = ["platform", "workers"]  # the crash tests' fixtures

DOWN_SECONDS = 3.0
ERRORS = 3
SLOW_CALLS = 5


@dataclass
class FlakyReceiver:
    """Down (503) for its first seconds, then answering 500 a few times, then slow for a
    few calls, then healthy. No event fails twice, so every one arrives within the first
    two steps of the retry schedule (at once, then 5 s later)."""

    started: float | None = None
    """When the first call came: the receiver is down from then for DOWN_SECONDS."""
    calls: list[tuple[Call, int]] = field(default_factory=list)
    errors_left: int = ERRORS
    slow_left: int = SLOW_CALLS
    failed: set[str] = field(default_factory=set)

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        # The workers run on the real clock.
        call = Call(request.url.path, dict(request.headers), body, datetime.now(UTC))
        self.started = self.started or time.monotonic()
        event_id = call.headers["webhook-id"]
        if event_id not in self.failed and time.monotonic() - self.started < DOWN_SECONDS:
            status = 503
            self.failed.add(event_id)
        elif event_id not in self.failed and self.errors_left > 0:
            self.errors_left -= 1
            status = 500
            self.failed.add(event_id)
        else:
            if self.slow_left > 0:
                self.slow_left -= 1
                await asyncio.sleep(0.5)
            status = 204
        self.calls.append((call, status))
        return Response(status_code=status)


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[FlakyReceiver, str]]:
    found = FlakyReceiver()
    app = Starlette(routes=[Route("/hooks", found.handle, methods=["POST"])])
    async with serving(app) as url:
        yield found, url


async def test_every_event_arrives_signed_in_order_through_a_killed_worker(
    make_tenant: MakeTenant,
    db: Database,
    vault: Vault,
    platform: Platform,
    workers: Workers,
    flaky: tuple[FlakyReceiver, str],
) -> None:
    receiver, url = flaky
    tenant = await make_tenant()
    endpoint = await add_endpoint(tenant, f"{url}/hooks")
    account = await account_on(platform, db, vault, tenant)
    posts = await schedule_many(db, tenant, account, 5, datetime.now(UTC) + timedelta(seconds=1))
    [first] = workers.start(1)

    async def some_events() -> bool:
        async with db.workspace_transaction(UUID(tenant.id)) as session:
            count = await session.scalar(select(func.count()).select_from(WebhookEvent))
        return bool(count)

    assert await eventually(some_events, 30)
    first.send_signal(signal.SIGKILL)  # right after it committed events, before sending them
    first.wait(timeout=10)
    workers.start(1)
    assert await eventually(lambda: all_published(db, tenant, posts), 60)

    async with db.workspace_transaction(UUID(tenant.id)) as session:
        events = {
            str(e.id): e
            for e in (await session.execute(select(WebhookEvent))).scalars()
            if e.type.startswith("post.")
        }
    kinds = sorted((str(e.subject_id), e.sequence, e.type) for e in events.values())
    assert len(events) == 5 * 3, kinds  # queued, delivery.published, published for each post

    async def all_arrived() -> bool:
        return {c.headers["webhook-id"] for c, s in receiver.calls if s < 300} >= set(events)

    assert await eventually(all_arrived, 60)
    by_post: dict[str, list[int]] = defaultdict(list)
    seen_ids: dict[str, str] = {}
    for call, status in receiver.calls:
        call.verify(endpoint["secret"])
        payload: dict[str, Any] = call.payload
        event_id = call.headers["webhook-id"]
        assert seen_ids.setdefault(event_id, call.body) == call.body  # duplicates: same id
        if status < 300:
            post_id = payload["data"].get("post_id") or payload["data"]["id"]
            by_post[post_id].append(payload["sequence"])
    assert {UUID(p) for p in by_post} == set(posts)
    for sequences in by_post.values():
        assert sequences == sorted(sequences), "each post's events arrive in order"
        assert set(sequences) == {1, 2, 3}
    statuses = [s for _, s in receiver.calls]
    assert statuses[0] == 503, "the receiver was down at first"
    assert statuses.count(500) == ERRORS, "then failing"
