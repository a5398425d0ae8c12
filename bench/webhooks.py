"""Webhook delivery under load (issue targets: at least 500 events/s to one fast receiver;
with 50 endpoints of which 10 hang for 10 s, p99 commit-to-delivery under 1 s on the
healthy ones).

Embedded PostgreSQL, two `crier worker` processes (one per core) dispatching, and the
receivers in this process (aiohttp). Events are written the way Crier writes them (the
outbox statement, in batches of transactions); their delay is receipt time minus the
event's `timestamp`, taken just before its transaction commits. The ceiling is this process
POSTing the same signed bodies to the same receiver with as many calls in flight. Every
phase is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import aiohttp
from aiohttp import web
from cryptography.fernet import Fernet

from bench.common import crier_workers, database, free_port, receiving
from crier.kit.db import Database, DatabaseUrls
from crier.kit.outbound import Guard
from crier.kit.time import SystemClock
from crier.kit.vault import Vault
from crier.webhook import events, service
from crier.webhook.dispatcher import sign
from crier.webhook.events import EventType
from crier.webhook.schemas import WebhookEndpointCreate
from crier.workspace.service import create_workspace

WORKERS = 2
FAST_EVENTS, FAST_SECONDS = 10_000, 60.0
MIXED_ENDPOINTS, HANGING, HANG_SECONDS = 50, 10, 10.0
MIXED_RATE, MIXED_SECONDS = 10, 20  # events/s, each to all 50 endpoints
BATCH = 100
THROUGHPUT_TARGET, P99_TARGET_MS = 500.0, 1000.0
DATA = {"id": "01a2253b-7e2a-71dc-8296-4e6a546bf4f5", "status": "published", "text": "x" * 600}


@dataclass
class Receivers:
    """Healthy paths answer 204 at once; `/hang/...` after HANG_SECONDS."""

    received: dict[str, list[float]] = field(default_factory=dict)
    """Per path, the delay (s) of each call from its event's timestamp."""
    ids: dict[str, set[str]] = field(default_factory=dict)
    duplicates: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        sent = datetime.fromisoformat(body["timestamp"]).timestamp()
        path = request.path
        if path.startswith("/hang/"):
            await asyncio.sleep(HANG_SECONDS)
        seen = self.ids.setdefault(path, set())
        event_id = request.headers["webhook-id"]
        if event_id in seen:
            self.duplicates += 1
        seen.add(event_id)
        self.received.setdefault(path, []).append(time.time() - sent)
        async with self.changed:
            self.changed.notify_all()
        return web.Response(status=204)

    def count(self, prefix: str) -> int:
        return sum(len(v) for k, v in self.received.items() if k.startswith(prefix))

    def delays(self, prefix: str) -> list[float]:
        return sorted(d for k, v in self.received.items() if k.startswith(prefix) for d in v)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))] * 1000


async def _workspace(db: Database, vault: Vault, urls: list[str]) -> UUID:
    async with db.transaction() as session:
        new = await create_workspace(
            session, name="Bench", plan="agency", owner_email=f"bench-{len(urls)}@example.com"
        )
    ws = new.workspace.id
    async with db.workspace_transaction(ws) as session:
        for url in urls:
            await service.create(
                session, vault, Guard(allow_loopback=True), ws, WebhookEndpointCreate(url=url)
            )
    return ws


async def _emit(db: Database, ws: UUID, count: int) -> None:
    clock = SystemClock()
    for start in range(0, count, BATCH):
        async with db.workspace_transaction(ws) as session:
            for _ in range(min(BATCH, count - start)):
                await events.emit(session, clock.now(), EventType.POST_PUBLISHED, DATA)


async def _emit_steadily(db: Database, ws: UUID, rate: int, seconds: int) -> None:
    started = time.monotonic()
    for second in range(seconds):
        await _emit(db, ws, rate)
        await asyncio.sleep(max(0.0, started + second + 1 - time.monotonic()))


async def _wait_for(receivers: Receivers, check: Callable[[], bool], seconds: float) -> float:
    """Wait until `check()` holds or `seconds` pass; returns when (monotonic)."""
    async with receivers.changed:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(receivers.changed.wait_for(check), seconds)
    return time.monotonic()


async def _ceiling(url: str, count: int, concurrency: int) -> float:
    """Requests/s of this process POSTing signed event bodies to the fast receiver."""
    secret = service.new_secret()
    body = json.dumps(
        {"type": "post.published", "timestamp": datetime.now(UTC).isoformat(), "data": DATA}
    )
    counter = iter(range(count))
    async with aiohttp.ClientSession() as session:

        async def one() -> None:
            for i in counter:
                now = datetime.now(UTC)
                headers = {
                    "content-type": "application/json",
                    "webhook-id": str(i),
                    "webhook-timestamp": str(int(now.timestamp())),
                    "webhook-signature": sign([secret], str(i), now, body),
                }
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(concurrency)))
        return count / (time.monotonic() - started)


async def _run(urls: DatabaseUrls, root: Path, key: str) -> dict[str, float]:
    receivers = Receivers()
    runner, base = await receiving("/{path:.*}", receivers.handle)
    vault = Vault(key)
    db = Database(urls, pool_size=4)
    results: dict[str, float] = {}
    sandbox = f"http://127.0.0.1:{free_port()}"  # unused: no post falls due here
    try:
        with crier_workers(urls, root, key, sandbox, WORKERS, root / "workers.log"):
            results["ceiling"] = await _ceiling(f"{base}/ceiling", 4000, 64)

            fast = await _workspace(db, vault, [f"{base}/fast"])
            started = time.monotonic()
            await _emit(db, fast, FAST_EVENTS)
            results["fast_emit_s"] = time.monotonic() - started
            done = await _wait_for(
                receivers, lambda: receivers.count("/fast") >= FAST_EVENTS, FAST_SECONDS
            )
            results["fast_delivered"] = receivers.count("/fast")
            results["fast_rate"] = results["fast_delivered"] / (done - started)
            delays = receivers.delays("/fast")
            results["fast_p50"], results["fast_p99"] = _pct(delays, 50), _pct(delays, 99)

            mixed = await _workspace(
                db,
                vault,
                [f"{base}/hang/{i}" for i in range(HANGING)]
                + [f"{base}/ok/{i}" for i in range(MIXED_ENDPOINTS - HANGING)],
            )
            await _emit_steadily(db, mixed, MIXED_RATE, MIXED_SECONDS)
            healthy = MIXED_RATE * MIXED_SECONDS * (MIXED_ENDPOINTS - HANGING)
            await _wait_for(receivers, lambda: receivers.count("/ok/") >= healthy, 30)
            results["mixed_expected"] = healthy
            results["mixed_delivered"] = receivers.count("/ok/")
            results["mixed_hanging_done"] = receivers.count("/hang/")
            delays = receivers.delays("/ok/")
            results["mixed_p50"], results["mixed_p99"] = _pct(delays, 50), _pct(delays, 99)
            results["duplicates"] = receivers.duplicates
    finally:
        await db.dispose()
        await runner.cleanup()
    return results


def main() -> None:
    key = Fernet.generate_key().decode()
    with tempfile.TemporaryDirectory(prefix="crier-bench-") as folder:
        root = Path(folder)
        with database(root / "db") as urls:
            r = asyncio.run(_run(urls, root, key))
    print(
        f"\nWebhooks: {WORKERS} `crier worker` processes dispatching, receivers in the "
        "benchmark process (aiohttp), embedded PostgreSQL, all on this machine"
    )
    print(f"ceiling: this process POSTing signed events, 64 in flight: {r['ceiling']:.0f} req/s")
    print(
        f"one fast receiver: {r['fast_delivered']:.0f}/{FAST_EVENTS} events delivered, "
        f"{r['fast_rate']:.0f} events/s from the first commit to the last receipt "
        f"(writing them took {r['fast_emit_s']:.1f} s); delay p50 {r['fast_p50']:.0f} ms, "
        f"p99 {r['fast_p99']:.0f} ms"
    )
    print(
        f"{MIXED_ENDPOINTS} endpoints, {HANGING} hanging {HANG_SECONDS:.0f} s, "
        f"{MIXED_RATE} events/s for {MIXED_SECONDS} s: healthy endpoints got "
        f"{r['mixed_delivered']:.0f}/{r['mixed_expected']:.0f}, delay p50 "
        f"{r['mixed_p50']:.0f} ms, p99 {r['mixed_p99']:.0f} ms; hanging ones answered "
        f"{r['mixed_hanging_done']:.0f} so far"
    )
    rate_ok = r["fast_rate"] >= THROUGHPUT_TARGET and r["fast_delivered"] == FAST_EVENTS
    p99_ok = r["mixed_p99"] < P99_TARGET_MS and r["mixed_delivered"] >= r["mixed_expected"]
    print(
        f"\nthroughput {r['fast_rate']:.0f} events/s (target >= {THROUGHPUT_TARGET:.0f}; "
        f"{r['fast_rate'] / r['ceiling']:.2f} of the ceiling): {'met' if rate_ok else 'NOT met'}"
    )
    print(
        f"healthy-endpoint p99 {r['mixed_p99']:.0f} ms (target < {P99_TARGET_MS:.0f}): "
        f"{'met' if p99_ok else 'NOT met'}"
    )
    print(f"duplicates received: {r['duplicates']:.0f}")


if __name__ == "__main__":
    main()
