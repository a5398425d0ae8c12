"""Sends webhook deliveries: signed to the Standard Webhooks spec, retried for about a day.

Any number of dispatchers (one in each `crier worker`) share the work: deliveries are
leased with SKIP LOCKED, and one whose dispatcher died is taken over when its lease
expires. Each delivery is its own task, and each endpoint gets at most `per_endpoint`
calls at once from one dispatcher, so a slow or dead receiver holds only its own slots.
A post's events reach each endpoint in sequence order: the next waits for the previous.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter
from datetime import datetime, timedelta
from uuid import UUID

import httpx
from sqlalchemy.exc import DBAPIError
from standardwebhooks.webhooks import Webhook

from crier.kit.db import Database
from crier.kit.db.notify import first_of, listen
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import WebhookAttempt as AttemptRow
from crier.models import WebhookDelivery as DeliveryRow
from crier.models import WebhookEndpoint as EndpointRow
from crier.models import WebhookEvent as EventRow
from crier.webhook import service
from crier.webhook.events import CHANNEL, QUERIES
from crier.webhook.outbound import DestinationRefused, Guard

log = logging.getLogger(__name__)

RETRY_SCHEDULE = (
    timedelta(0),
    timedelta(seconds=5),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
    timedelta(hours=5),
    timedelta(hours=10),
    timedelta(hours=10),
)
"""Attempt n is made `RETRY_SCHEDULE[n - 1]` after the failure before it (give or take
10% of jitter): 8 attempts over about 27.6 hours."""
TIMEOUT = timedelta(seconds=15)
DISABLE_AFTER = timedelta(days=5)
MAX_RETRY_AFTER = timedelta(hours=10)
USER_AGENT = "Crier-Webhooks/1.0"


def delay_before(attempt: int, retry_after: timedelta | None) -> timedelta:
    """The wait before attempt number `attempt` (2 and up), with jitter, never shorter than
    the receiver's `Retry-After`."""
    base = RETRY_SCHEDULE[attempt - 1]
    jittered = base * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not a secret
    if retry_after is not None:
        return max(jittered, min(retry_after, MAX_RETRY_AFTER))
    return jittered


def retry_after_of(response: httpx.Response, now: datetime) -> timedelta | None:
    """`Retry-After` as seconds or an HTTP date, on 429 and 503 only."""
    if response.status_code not in (429, 503):
        return None
    value = response.headers.get("retry-after", "").strip()
    if not value:
        return None
    if value.isdigit():
        return timedelta(seconds=int(value))
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(when - now, timedelta(0))


def sign(secrets_: list[str], event_id: str, when: datetime, body: str) -> str:
    """The `webhook-signature` header: one `v1,` signature per secret, space-separated."""
    return " ".join(Webhook(s).sign(event_id, when, body) for s in secrets_)


class Dispatcher:
    def __init__(
        self,
        app_db: Database,
        scheduler_db: Database,
        vault: Vault,
        clock: Clock,
        *,
        guard: Guard | None = None,
        worker_id: str | None = None,
        lease: timedelta = timedelta(seconds=60),
        batch: int = 100,
        concurrency: int = 64,
        per_endpoint: int = 4,
        timeout: timedelta = TIMEOUT,
        disable_after: timedelta = DISABLE_AFTER,
        poll: timedelta = timedelta(seconds=1),
    ) -> None:
        self.app_db, self.scheduler_db, self.vault, self.clock = app_db, scheduler_db, vault, clock
        self.guard = guard or Guard()
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.lease, self.batch, self.concurrency = lease, batch, concurrency
        self.per_endpoint, self.disable_after, self.poll = per_endpoint, disable_after, poll
        self.client = httpx.AsyncClient(
            timeout=timeout.total_seconds(),
            follow_redirects=False,
            headers={"user-agent": USER_AGENT},
            trust_env=False,
        )
        self.in_flight: Counter[UUID] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.listening = asyncio.Event()
        self.wake = asyncio.Event()
        """Set by new events (NOTIFY) and by finished calls, which free a slot."""

    async def tick(self) -> int:
        """Claim what is due and start sending it; returns how many were started."""
        room = min(self.batch, self.concurrency - len(self.tasks))
        if room <= 0:
            return 0
        busy = list(self.in_flight)
        now = self.clock.now()
        async with self.scheduler_db.engine.begin() as conn:
            rows = (
                await conn.execute(
                    QUERIES["claim_due_deliveries"],
                    {
                        "worker": self.id,
                        "now": now,
                        "lease_until": now + self.lease,
                        "busy_ids": busy,
                        "busy_room": [max(0, self.per_endpoint - self.in_flight[e]) for e in busy],
                        "per_endpoint": self.per_endpoint,
                        "limit": room,
                    },
                )
            ).all()
        for row in rows:
            self.in_flight[row.endpoint_id] += 1
            task = asyncio.create_task(self._send(row.workspace_id, row.id, row.endpoint_id))
            self.tasks.add(task)
            task.add_done_callback(self._finished)
        return len(rows)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.wake.set()

    async def drain(self) -> None:
        """Wait for every call in flight to finish."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
        await self.client.aclose()

    async def _send(self, workspace_id: UUID, delivery_id: UUID, endpoint_id: UUID) -> None:
        try:
            await self._attempt(workspace_id, delivery_id)
        except Exception:  # the lease expires and the delivery is tried again
            log.exception("webhook delivery failed unexpectedly", extra={"delivery": delivery_id})
        finally:
            self.in_flight[endpoint_id] -= 1
            if self.in_flight[endpoint_id] <= 0:
                del self.in_flight[endpoint_id]

    async def _attempt(self, workspace_id: UUID, delivery_id: UUID) -> None:
        now = self.clock.now()
        async with self.app_db.workspace_transaction(workspace_id) as session:
            delivery = await session.get(DeliveryRow, (workspace_id, delivery_id))
            if delivery is None or delivery.status != "pending" or delivery.lease_owner != self.id:
                return
            endpoint = await session.get(EndpointRow, (workspace_id, delivery.endpoint_id))
            event = await session.get(EventRow, (workspace_id, delivery.event_id))
            assert endpoint is not None
            assert event is not None
            url, number = endpoint.url, delivery.attempts + 1
            signing = service.signing_secrets(endpoint, self.vault, now)
            body = json.dumps(event.payload, separators=(",", ":"))
            event_id = str(event.id)
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: timedelta | None = None
        try:
            await self.guard.check(url)
            response = await self.client.post(
                url,
                content=body.encode(),
                headers={
                    "content-type": "application/json",
                    "webhook-id": event_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": sign(signing, event_id, now, body),
                },
            )
            status = response.status_code
            retry_after = retry_after_of(response, self.clock.now())
            if not 200 <= status < 300:
                error = f"answered {status}"
        except DestinationRefused as refused:
            error = f"destination refused: {refused}"
        except httpx.TimeoutException:
            error = f"no answer within {self.client.timeout.read} s"
        except httpx.HTTPError as failure:
            error = f"could not connect: {type(failure).__name__}"
        duration = round((time.perf_counter() - started) * 1000)
        await self._record(
            workspace_id, delivery_id, number, now, duration, status, error, retry_after
        )

    async def _record(
        self,
        workspace_id: UUID,
        delivery_id: UUID,
        number: int,
        started_at: datetime,
        duration_ms: int,
        status: int | None,
        error: str | None,
        retry_after: timedelta | None,
    ) -> None:
        now = self.clock.now()
        async with self.app_db.workspace_transaction(workspace_id) as session:
            delivery = await session.get(
                DeliveryRow, (workspace_id, delivery_id), with_for_update=True
            )
            if delivery is None:
                return  # its endpoint was deleted meanwhile
            endpoint = await session.get(
                EndpointRow, (workspace_id, delivery.endpoint_id), with_for_update=True
            )
            assert endpoint is not None
            session.add(
                AttemptRow(
                    workspace_id=workspace_id,
                    delivery_id=delivery_id,
                    number=number,
                    started_at=started_at,
                    duration_ms=duration_ms,
                    status_code=status,
                    error=error,
                )
            )
            delivery.attempts = number
            delivery.last_status_code = status
            delivery.last_error = error
            delivery.lease_owner = delivery.lease_expires_at = None
            if error is None:
                delivery.status = "succeeded"
                delivery.succeeded_at = now
                delivery.next_attempt_at = None
                endpoint.failing_since = None
                return
            endpoint.failing_since = endpoint.failing_since or started_at
            if status == 410:
                delivery.status = "failed"
                service.disable(endpoint, now, "the receiver answered 410 Gone")
            elif now - endpoint.failing_since >= self.disable_after:
                delivery.status = "failed"
                service.disable(
                    endpoint,
                    now,
                    f"every call failed since {endpoint.failing_since.isoformat()} (last: {error})",
                )
            elif number >= len(RETRY_SCHEDULE):
                delivery.status = "failed"
            else:
                delivery.next_attempt_at = now + delay_before(number + 1, retry_after)
            if delivery.status == "failed":
                delivery.next_attempt_at = None

    async def run(self, stop: asyncio.Event) -> None:
        """Dispatch until `stop` is set; new events wake it through LISTEN/NOTIFY."""
        wake = self.wake
        listener = asyncio.create_task(listen(self.app_db, CHANNEL, wake, stop, self.listening))
        try:
            while not stop.is_set():
                wake.clear()
                wait = self.poll.total_seconds()
                try:
                    if await self.tick() and len(self.tasks) < self.concurrency:
                        wait = 0.05  # more may be due: claim again soon
                except (DBAPIError, OSError):
                    log.warning("webhook dispatch round failed; retrying")
                    wait = 5.0
                await first_of(stop, wake, timedelta(seconds=wait))
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self.close()
