"""The posts API under load. Targets: create at least 30% of the ceiling's requests per
second, and p99 under 50 ms, at 16 concurrent clients (an earlier 40% was withdrawn once
what a create must do had been measured).

`crier serve --workers 2` (one uvicorn worker per core) on the embedded PostgreSQL; 16
concurrent aiohttp clients in this process. The ceiling is `/readyz` on the same server: one
round trip reading one row, no authentication. Then `POST /v1/posts` (scheduled, two
targets) and `GET /v1/posts/{id}` of the posts just created.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp

from bench.common import (
    Measured,
    Reply,
    crier_server,
    database,
    load,
    send,
    table,
    workspace_key,
)

Request = Callable[[aiohttp.ClientSession, int], Awaitable[Reply]]

CONCURRENCY = 16
WORKERS = 2
MAX_REQUESTS = 4000
MAX_SECONDS = 15.0
WARMUP = 300
CREATE_SHARE_TARGET = 0.30
P99_TARGET_MS = 50.0


async def _run(base: str, key: str) -> list[Measured]:
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        accounts = []
        for _ in range(2):
            reply = await send(session, "POST", "/v1/social-accounts", {"platform": "sandbox"})
            assert reply.status == 201, reply.body
            accounts.append(json.loads(reply.body)["id"])
        publish_at = (datetime.now(UTC) + timedelta(days=2)).isoformat()
        created: list[str] = []

        async def ceiling(s: aiohttp.ClientSession, _: int) -> Reply:
            return await send(s, "GET", "/readyz")

        async def create(s: aiohttp.ClientSession, i: int) -> Reply:
            reply = await send(
                s,
                "POST",
                "/v1/posts",
                {
                    "payload": {"text": f"Benchmark post {i}"},
                    "targets": [{"social_account_id": a} for a in accounts],
                    "status": "scheduled",
                    "publish_at": publish_at,
                },
            )
            if reply.status == 201:
                created.append(json.loads(reply.body)["id"])
            return reply

        async def read(s: aiohttp.ClientSession, i: int) -> Reply:
            return await send(s, "GET", f"/v1/posts/{created[i % len(created)]}")

        async def measure(name: str, request: Request, count: int, seconds: float) -> Measured:
            return await load(
                name,
                request,
                session,
                concurrency=CONCURRENCY,
                max_requests=count,
                max_seconds=seconds,
            )

        await measure("warm-up", ceiling, WARMUP, 10.0)
        await measure("warm-up", create, WARMUP, 10.0)
        return [
            await measure("GET /readyz (ceiling)", ceiling, MAX_REQUESTS, MAX_SECONDS),
            await measure("POST /v1/posts (2 targets)", create, MAX_REQUESTS, MAX_SECONDS),
            await measure("GET /v1/posts/{id}", read, MAX_REQUESTS, MAX_SECONDS),
        ]


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crier-bench-") as folder:
        root = Path(folder)
        with database(root) as urls:
            key = asyncio.run(workspace_key(urls, "Bench"))
            with crier_server(urls, root, WORKERS) as base:
                ceiling, create, read = asyncio.run(_run(base, key))
    print(
        f"\nPosts API: {CONCURRENCY} concurrent aiohttp clients, `crier serve --workers "
        f"{WORKERS}` (uvicorn, uvloop), embedded PostgreSQL, all on this machine"
    )
    print(table([ceiling, create, read]))
    share = create.rps / ceiling.rps if ceiling.rps else 0.0
    print(
        f"\ncreate req/s / ceiling req/s = {share:.2f}  (target >= {CREATE_SHARE_TARGET:.2f}): "
        f"{'met' if share >= CREATE_SHARE_TARGET else 'NOT met'}"
    )
    for m in (create, read):
        p99 = m.percentile(99)
        print(
            f"{m.name} p99 = {p99:.1f} ms  (target < {P99_TARGET_MS:.0f} ms): "
            f"{'met' if p99 < P99_TARGET_MS else 'NOT met'}"
        )
    if create.errors or read.errors or ceiling.errors:
        print("errors were answered during the run: the figures above are not valid")


if __name__ == "__main__":
    main()
