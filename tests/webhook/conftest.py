"""A webhook receiver on 127.0.0.1 that answers as scripted, and a dispatcher on the test
clock."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from crier.kit.db import Database
from crier.kit.outbound import Guard
from crier.kit.time import Clock, SystemClock
from crier.runtime import Runtime
from crier.webhook.dispatcher import Dispatcher
from tests.conftest import FakeClock, Tenant
from tests.scheduler.conftest import platform_timeout, runtime, worker
from tests.servers import serving

# The scheduler's fixtures, for lifecycle events.
__all__ = ["platform_timeout", "runtime", "worker"]


class ReceiverAt(Webhook):
    """The `standardwebhooks` library's receiver, whole, except that its "now" (for the
    5-minute timestamp tolerance) is given: the test clock, which may be far from the real
    one."""

    TOLERANCE = timedelta(minutes=5)

    def __init__(self, secret: str, now: datetime) -> None:
        super().__init__(secret)
        self._now = now

    # Overrides the library's private `__verify_timestamp`, which reads the real clock.
    def _Webhook__verify_timestamp(self, timestamp_header: str) -> datetime:
        timestamp = datetime.fromtimestamp(float(timestamp_header), tz=UTC)
        if timestamp < self._now - self.TOLERANCE:
            raise WebhookVerificationError("Message timestamp too old")
        if timestamp > self._now + self.TOLERANCE:
            raise WebhookVerificationError("Message timestamp too new")
        return timestamp


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: str
    arrived_at: datetime
    """The test clock's time when the call arrived."""

    @property
    def payload(self) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(self.body)
        return found

    def verify(self, secret: str, now: datetime | None = None) -> dict[str, Any]:
        """Check the call as a receiver would, with the `standardwebhooks` library, at `now`
        (by default when it arrived); returns the payload."""
        found: dict[str, Any] = ReceiverAt(secret, now or self.arrived_at).verify(
            self.body, self.headers
        )
        return found


@dataclass
class Receiver:
    """Answers each call with the next scripted status (200 once the script runs out);
    `hang` paths never answer until the test ends."""

    script: list[int | tuple[int, dict[str, str]]] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    hang: set[str] = field(default_factory=set)
    released: asyncio.Event = field(default_factory=asyncio.Event)
    url: str = ""
    arrived: asyncio.Condition = field(default_factory=asyncio.Condition)
    clock: Clock = field(default_factory=SystemClock)

    async def called(self, path: str) -> None:
        """Wait until `path` has been called."""
        async with self.arrived:
            await self.arrived.wait_for(lambda: bool(self.to(path)))

    async def handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        self.calls.append(Call(request.url.path, dict(request.headers), body, self.clock.now()))
        async with self.arrived:
            self.arrived.notify_all()
        if request.url.path in self.hang:
            await self.released.wait()
        status: int | tuple[int, dict[str, str]] = self.script.pop(0) if self.script else 200
        if isinstance(status, tuple):
            return Response(status_code=status[0], headers=status[1])
        return Response(status_code=status)

    def to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]


@pytest.fixture
async def receiver(clock: FakeClock) -> AsyncIterator[Receiver]:
    found = Receiver(clock=clock)
    app = Starlette(routes=[Route("/{path:path}", found.handle, methods=["POST"])])
    async with serving(app) as url:
        found.url = url
        yield found
        found.released.set()


async def no_names(host: str, port: int) -> list[str]:
    """The tests' resolver: no host name leads anywhere, so no test can reach past
    loopback, whatever URL an endpoint has. Tests that need a name inject their own."""
    raise OSError(f"tests resolve no names ({host})")


@pytest.fixture
async def dispatcher(runtime: Runtime, scheduler_db: Database) -> AsyncIterator[Dispatcher]:
    found = runtime.dispatcher(
        scheduler_db,
        guard=Guard(resolver=no_names, allow_loopback=True),
        worker_id="test-dispatcher",
        timeout=timedelta(seconds=2),
        per_endpoint=4,
    )
    yield found
    await found.close()


async def deliver_due(dispatcher: Dispatcher, rounds: int = 20) -> None:
    """Dispatch until nothing more is due now (at most `rounds` rounds)."""
    for _ in range(rounds):
        started = await dispatcher.tick()
        await dispatcher.drain()
        if not started:
            return


async def add_endpoint(tenant: Tenant, url: str, **extra: object) -> dict[str, Any]:
    response = await tenant.post("/v1/webhook-endpoints", json={"url": url, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
