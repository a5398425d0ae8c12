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
import logging
import os
import random
import secrets
import socket
import time
from collections import Counter
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

import aiohttp
from sqlalchemy import Row
from sqlalchemy.exc import DBAPIError
from standardwebhooks.webhooks import Webhook

from crier.kit.db import Database
from crier.kit.db.notify import first_of, listen
from crier.kit.ids import new_id
from crier.kit.outbound import DestinationRefused, Guard, GuardedResolver
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import WebhookAttempt as AttemptRow
from crier.models import WebhookDelivery as DeliveryRow
from crier.models import WebhookEndpoint as EndpointRow
from crier.webhook import repository, service
from crier.webhook.events import CHANNEL

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
ROUND = timedelta(milliseconds=10)
FLUSH_EVERY = timedelta(milliseconds=20)
"""Successful calls are recorded in batches this often: a dispatcher that dies in between
leaves them to be sent again (with the same `webhook-id`) when their leases expire."""


def delay_before(attempt: int, retry_after: timedelta | None) -> timedelta:
    """The wait before attempt number `attempt` (2 and up), with jitter, never shorter than
    the receiver's `Retry-After`."""
    base = RETRY_SCHEDULE[attempt - 1]
    jittered = base * random.uniform(0.9, 1.1)  # noqa: S311 - jitter, not a secret
    if retry_after is not None:
        return max(jittered, min(retry_after, MAX_RETRY_AFTER))
    return jittered


def retry_after_of(status: int, value: str, now: datetime) -> timedelta | None:
    """`Retry-After` (`value`) as seconds or an HTTP date, on 429 and 503 only."""
    if status not in (429, 503):
        return None
    value = value.strip()
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
        concurrency: int = 256,
        per_endpoint: int = 16,
        timeout: timedelta = TIMEOUT,
        disable_after: timedelta = DISABLE_AFTER,
        poll: timedelta = timedelta(seconds=1),
    ) -> None:
        self.app_db, self.scheduler_db, self.vault, self.clock = app_db, scheduler_db, vault, clock
        self.guard = guard or Guard()
        self.id = worker_id or f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.lease, self.batch, self.concurrency = lease, batch, concurrency
        self.per_endpoint, self.disable_after, self.poll = per_endpoint, disable_after, poll
        self.timeout = timeout
        self._client: aiohttp.ClientSession | None = None
        self.in_flight: Counter[UUID] = Counter()
        self.tasks: set[asyncio.Task[None]] = set()
        self.listening = asyncio.Event()
        self.wake = asyncio.Event()
        """Set by new events (NOTIFY) and by finished calls, which free a slot."""
        self._succeeded: dict[UUID, list[tuple[UUID, int, datetime, int, int, datetime]]] = {}
        """Successful calls waiting to be recorded, by workspace."""
        self._flusher: asyncio.Task[None] | None = None
        self._flushing = asyncio.Lock()

    async def tick(self) -> int:
        """Claim what is due and start sending it; returns how many were started."""
        room = min(self.batch, self.concurrency - sum(self.in_flight.values()))
        if room <= 0:
            return 0
        busy = list(self.in_flight)
        now = self.clock.now()
        async with self.scheduler_db.engine.begin() as conn:
            rows = await repository.claim_due_deliveries(
                conn,
                worker=self.id,
                now=now,
                lease_until=now + self.lease,
                busy_ids=busy,
                busy_room=[max(0, self.per_endpoint - self.in_flight[e]) for e in busy],
                per_endpoint=self.per_endpoint,
                limit=room,
            )
        by_workspace: dict[UUID, list[tuple[UUID, UUID]]] = {}
        for row in rows:
            self.in_flight[row.endpoint_id] += 1
            by_workspace.setdefault(row.workspace_id, []).append((row.id, row.endpoint_id))
        for workspace_id, claimed in by_workspace.items():
            self._start(self._send_claimed(workspace_id, claimed))
        return len(rows)

    def _start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self.wake.set()

    async def drain(self) -> None:
        """Wait for every call in flight to finish and be recorded."""
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)
        await self.flush()

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*list(self.tasks), return_exceptions=True)
        await self.flush()
        if self._client is not None:
            await self._client.close()

    def client(self) -> aiohttp.ClientSession:
        """The HTTP client (aiohttp: it stays cheap with hundreds of calls in flight)."""
        if self._client is None:
            self._client = aiohttp.ClientSession(
                # Room for every call in flight, so none queues behind a hanging endpoint's.
                connector=aiohttp.TCPConnector(
                    limit=self.concurrency,
                    limit_per_host=0,
                    resolver=GuardedResolver(self.guard),
                ),
                timeout=aiohttp.ClientTimeout(total=self.timeout.total_seconds()),
                headers={"user-agent": USER_AGENT},
                trust_env=False,
            )
        return self._client

    async def _send_claimed(self, workspace_id: UUID, claimed: list[tuple[UUID, UUID]]) -> None:
        """Load a workspace's claimed deliveries in one transaction, then call each."""
        try:
            async with self.app_db.workspace_transaction(workspace_id) as session:
                found = await repository.load_deliveries(session, [d for d, _ in claimed])
        except Exception:  # the leases expire and the deliveries are tried again
            log.exception("loading webhook deliveries failed")
            for _, endpoint_id in claimed:
                self._done_with(endpoint_id)
            return
        await asyncio.gather(
            *(self._send(workspace_id, found.get(d), endpoint_id) for d, endpoint_id in claimed)
        )

    def _done_with(self, endpoint_id: UUID) -> None:
        self.in_flight[endpoint_id] -= 1
        if self.in_flight[endpoint_id] <= 0:
            del self.in_flight[endpoint_id]

    async def _send(self, workspace_id: UUID, found: Row[Any] | None, endpoint_id: UUID) -> None:
        try:
            if found is not None and found.status == "pending" and found.lease_owner == self.id:
                await self._attempt(workspace_id, found)
        except Exception:  # the lease expires and the delivery is tried again
            log.exception("webhook delivery failed unexpectedly")
        finally:
            self._done_with(endpoint_id)

    async def _attempt(self, workspace_id: UUID, found: Row[Any]) -> None:
        now = self.clock.now()
        url, number, body, event_id = found.url, found.attempts + 1, found.body, str(found.event_id)
        signing = service.signing_secrets(
            found.secret, found.previous_secret, found.previous_secret_expires_at, self.vault, now
        )
        started = time.perf_counter()
        status: int | None = None
        error: str | None = None
        retry_after: timedelta | None = None
        try:
            self.guard.check_literal(url)  # names are checked by the client's resolver
            async with self.client().post(
                url,
                data=body.encode(),
                allow_redirects=False,
                headers={
                    "content-type": "application/json",
                    "webhook-id": event_id,
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": sign(signing, event_id, now, body),
                },
            ) as response:
                status = response.status
                retry_after = retry_after_of(
                    status, response.headers.get("retry-after", ""), self.clock.now()
                )
            if not 200 <= status < 300:
                error = f"answered {status}"
        except DestinationRefused as refused:
            error = f"destination refused: {refused}"
        except aiohttp.ClientConnectorError as failure:
            if isinstance(failure.os_error, DestinationRefused):
                error = f"destination refused: {failure.os_error}"
            else:
                error = f"could not connect: {type(failure).__name__}"
        except TimeoutError:
            error = f"no answer within {self.timeout.total_seconds():g} s"
        except aiohttp.ClientError as failure:
            error = f"could not connect: {type(failure).__name__}"
        duration = round((time.perf_counter() - started) * 1000)
        if error is None:
            self._succeeded.setdefault(workspace_id, []).append(
                (found.id, number, now, duration, status or 0, self.clock.now())
            )
            if self._flusher is None or self._flusher.done():
                self._flusher = asyncio.create_task(self._flush_soon())
            return
        await self._record(
            workspace_id, found.id, number, now, duration, status, error, retry_after
        )

    async def _flush_soon(self) -> None:
        await asyncio.sleep(FLUSH_EVERY.total_seconds())
        await self.flush()

    async def flush(self) -> None:
        """Record the successful calls not yet recorded: one statement per workspace. Returns
        once they, and any flush already under way, are committed."""
        async with self._flushing:
            await self._flush()

    async def _flush(self) -> None:
        pending, self._succeeded = self._succeeded, {}
        for workspace_id, done in pending.items():
            try:
                async with self.app_db.workspace_transaction(workspace_id) as session:
                    await repository.record_successes(
                        session,
                        worker=self.id,
                        ids=[d[0] for d in done],
                        attempt_ids=[new_id() for _ in done],
                        numbers=[d[1] for d in done],
                        started=[d[2] for d in done],
                        durations=[d[3] for d in done],
                        codes=[d[4] for d in done],
                        finished=[d[5] for d in done],
                    )
            except Exception:  # unrecorded: the leases expire and the calls are made again
                log.exception("recording webhook successes failed")

    async def _record(
        self,
        workspace_id: UUID,
        delivery_id: UUID,
        number: int,
        started_at: datetime,
        duration_ms: int,
        status: int | None,
        error: str,
        retry_after: timedelta | None,
    ) -> None:
        """A failed call: written down at once, with the delivery's next try or its end."""
        now = self.clock.now()
        async with self.app_db.workspace_transaction(workspace_id) as session:
            delivery = await session.get(
                DeliveryRow, (workspace_id, delivery_id), with_for_update=True
            )
            if delivery is None or delivery.status != "pending" or delivery.lease_owner != self.id:
                return  # its endpoint was deleted, or its lease passed to another dispatcher
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
                    if await self.tick() and sum(self.in_flight.values()) < self.concurrency:
                        wait = 0.05  # more may be due: claim again soon
                except (DBAPIError, OSError):
                    log.warning("webhook dispatch round failed; retrying")
                    wait = 5.0
                # Calls finishing wake the loop hundreds of times a second; claiming at most
                # every ROUND batches them into fewer, larger claims.
                await first_of(stop, within=ROUND)
                await first_of(stop, wake, within=timedelta(seconds=wait))
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            await self.close()
