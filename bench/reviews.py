"""Review syncs and the review feed under load.

The project's Google Business Profile emulator, in its own process, holds 100,000 reviews
over 200 locations of one business account. Workers' review syncer (in this process, on
the embedded PostgreSQL, 8 locations at once) makes the first sync of every location, then,
after 1% of the reviews changed on Google, an incremental one. Figures: reviews stored per
second, against the baseline of the same pages merely read from the emulator (no storing,
no scoring), and the share of the first sync's requests the incremental one needed (each
location's first page, where its changes are). Zero losses: every review and every change
must be in Crier at the end. Then `GET /v1/reviews` (the change feed, 100 a page, from a
position anywhere in it) with 16 concurrent clients against `crier serve --workers 2`, and
its ratio to the server's ceiling (`/readyz`). Every phase is bounded in count and time.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import random
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
import httpx
import uvicorn
from cryptography.fernet import Fernet
from sqlalchemy import func, select, update

from bench.common import (
    Measured,
    Reply,
    crier_server,
    database,
    free_port,
    send,
    table,
    warmed_load,
)
from crier.kit.db import Database, DatabaseUrls
from crier.kit.db.engine import SCHEDULER_ROLE
from crier.kit.time import SystemClock
from crier.kit.vault import Vault
from crier.models import Review, ReviewSync, SocialAccount
from crier.platforms.google_business.adapter import GoogleBusinessAdapter
from crier.platforms.google_business.emulator import (
    Network,
    StoredReview,
    Token,
    create_emulator_app,
)
from crier.platforms.registry import Platforms, platform_http
from crier.review import repository as review_repository
from crier.review.service import encode_feed_cursor
from crier.review.tasks import ReviewSyncer
from crier.workspace.service import create_workspace

LOCATIONS = 200
PER_LOCATION = 500
CHANGED = 0.01
AT_ONCE = 8
SYNC_LIMIT = 900.0
"""Seconds a sync phase may take before it is called failed."""
CLIENTS = 16
WORKERS = 2
MAX_REQUESTS = 4000
MAX_SECONDS = 15.0
EMAIL = "owner@example.com"
TOKEN = "ya29.bench"
WORDS = (
    "Lovely staff and quick service.",
    "Cold food, long wait. Not again.",
    "Fine, nothing special.",
    "Great coffee! Will come back.",
    "Rude at the counter and dirty tables.",
    None,
)


def review_id(location: int, number: int) -> str:
    return f"AbFvOq{location:03d}x{number:04d}"


def _network() -> tuple[Network, list[str]]:
    """Google with one user, one business account, its locations and their reviews."""
    network = Network(SystemClock())
    network.faults.calls_per_minute = 10**9  # the benchmark measures Crier, not a quota
    network.user(EMAIL)
    network.tokens[TOKEN] = Token("bench", EMAIL, None)
    business = network.add_account(EMAIL, "Bench Group")
    names = []
    rng = random.Random(7)
    now = datetime.now(UTC)
    for n in range(LOCATIONS):
        location = network.add_location(business, f"Branch {n:03d}")
        names.append(location.name)
        for i in range(PER_LOCATION):
            written = now - timedelta(days=400) + timedelta(seconds=rng.randrange(400 * 86400))
            review = StoredReview(
                review_id(n, i),
                location.name,
                rng.randint(1, 5),
                rng.choice(WORDS),
                f"Guest {i}",
                written,
                written,
            )
            network.reviews[review.review_id] = review
    return network, names


def _serve(network: Network, port: int) -> None:
    uvicorn.run(create_emulator_app(network), host="127.0.0.1", port=port, log_level="warning")


async def _ready(url: str) -> None:
    async with httpx.AsyncClient() as client:
        for _ in range(300):  # 30 s at most
            try:
                await client.get(f"{url}/_emulator/posts")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the emulator did not start")


async def _served(url: str) -> int:
    """Review pages the emulator has answered (it counts them in its own process)."""
    async with httpx.AsyncClient() as client:
        return int((await client.get(f"{url}/_emulator/calls")).json().get("GET reviews", 0))


async def _baseline(url: str, names: list[str]) -> tuple[float, int]:
    """Every location's reviews read page by page, `AT_ONCE` at a time, stored nowhere:
    reviews per second and pages."""
    slots = asyncio.Semaphore(AT_ONCE)
    counted = [0, 0]

    async def read(client: httpx.AsyncClient, name: str) -> None:
        async with slots:
            params: dict[str, Any] = {"pageSize": 50}
            for _ in range(100):
                body = (await client.get(f"{url}/v4/{name}/reviews", params=params)).json()
                counted[0] += len(body["reviews"])
                counted[1] += 1
                if not body.get("nextPageToken"):
                    return
                params["pageToken"] = body["nextPageToken"]

    started = time.perf_counter()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(headers=headers, timeout=30) as client:
        await asyncio.gather(*(read(client, n) for n in names))
    return counted[0] / (time.perf_counter() - started), counted[1]


async def _setup(urls: DatabaseUrls, vault: Vault, names: list[str]) -> tuple[UUID, str]:
    db = Database(urls, pool_size=2)
    try:
        async with db.transaction() as session:
            new = await create_workspace(
                session, name="Bench", plan="agency", owner_email="bench@example.com"
            )
        ws = new.workspace.id
        async with db.workspace_transaction(ws) as session:
            accounts = [
                SocialAccount(
                    workspace_id=ws,
                    platform="google_business",
                    external_id=name,
                    handle=name,
                    display_name=name,
                    status="active",
                    access_token=vault.seal(TOKEN),
                    token_expires_at=datetime.now(UTC) + timedelta(days=30),
                )
                for name in names
            ]
            session.add_all(accounts)
            await session.flush()
            await review_repository.track(session, ws, [a.id for a in accounts], datetime.now(UTC))
        return ws, new.api_key_secret
    finally:
        await db.dispose()


async def _sync_all(syncer: ReviewSyncer, db: Database, ws: UUID) -> float:
    """Sweep until no location is due or under way; the seconds it took."""
    started = time.perf_counter()
    while time.perf_counter() - started < SYNC_LIMIT:
        await syncer.sweep()
        async with db.workspace_transaction(ws) as session:
            left = await session.scalar(
                select(func.count())
                .select_from(ReviewSync)
                .where(
                    (ReviewSync.next_sync_at <= datetime.now(UTC))
                    | ReviewSync.page_token.is_not(None)
                )
            )
        if not left:
            return time.perf_counter() - started
    raise RuntimeError(f"the sync did not finish in {SYNC_LIMIT:.0f} s")


async def _syncs(url: str, urls: DatabaseUrls, vault: Vault, ws: UUID) -> dict[str, float]:
    http = platform_http()
    platforms = Platforms(http)
    platforms.register(
        GoogleBusinessAdapter(
            http,
            client_id="bench",
            client_secret="bench",
            oauth_url=url,
            accounts_url=url,
            information_url=url,
            api_url=url,
            performance_url=url,
        )
    )
    db, scheduler_db = Database(urls, pool_size=AT_ONCE), Database(urls, 2, SCHEDULER_ROLE)
    syncer = ReviewSyncer(
        db, scheduler_db, platforms, vault, SystemClock(), batch=LOCATIONS, at_once=AT_ONCE
    )
    try:
        before = await _served(url)
        first = await _sync_all(syncer, db, ws)
        first_pages = await _served(url) - before
        async with db.workspace_transaction(ws) as session:
            stored = await session.scalar(select(func.count()).select_from(Review))
        # 1% of the reviews change on Google (a new text), spread over every location.
        rng = random.Random(3)
        chosen = rng.sample(
            range(LOCATIONS * PER_LOCATION), int(LOCATIONS * PER_LOCATION * CHANGED)
        )
        async with httpx.AsyncClient(base_url=url) as client:
            for number in chosen:
                n, i = divmod(number, PER_LOCATION)
                edited = await client.patch(
                    f"/_emulator/reviews/{review_id(n, i)}",
                    json={"comment": "Edited for the benchmark"},
                )
                edited.raise_for_status()
        edits = len(chosen)
        async with db.workspace_transaction(ws) as session:
            await session.execute(update(ReviewSync).values(next_sync_at=datetime.now(UTC)))
        before = await _served(url)
        incremental = await _sync_all(syncer, db, ws)
        incremental_pages = await _served(url) - before
        async with db.workspace_transaction(ws) as session:
            seen = await session.scalar(
                select(func.count())
                .select_from(Review)
                .where(Review.body == "Edited for the benchmark")
            )
        return {
            "first_seconds": first,
            "first_pages": first_pages,
            "stored": float(stored or 0),
            "incremental_seconds": incremental,
            "incremental_pages": incremental_pages,
            "edits": float(edits),
            "edits_seen": float(seen or 0),
        }
    finally:
        await platforms.close()
        await db.dispose()
        await scheduler_db.dispose()


async def _feed(base: str, key: str, last: int) -> list[Measured]:
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    rng = random.Random(11)
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:

        async def ceiling(s: aiohttp.ClientSession, _: int) -> Reply:
            return await send(s, "GET", "/readyz")

        async def feed(s: aiohttp.ClientSession, _: int) -> Reply:
            cursor = encode_feed_cursor(rng.randrange(last))
            return await send(s, "GET", f"/v1/reviews?limit=100&cursor={cursor}")

        results = []
        for name, request in (("GET /readyz (ceiling)", ceiling), ("GET /v1/reviews (100)", feed)):
            results.append(
                await warmed_load(
                    name,
                    request,
                    session,
                    concurrency=CLIENTS,
                    max_requests=MAX_REQUESTS,
                    max_seconds=MAX_SECONDS,
                )
            )
        return results


def main() -> None:
    network, names = _network()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator = multiprocessing.get_context("fork").Process(
        target=_serve, args=(network, port), daemon=True
    )
    emulator.start()
    try:
        with tempfile.TemporaryDirectory(prefix="crier-bench-") as folder:
            root = Path(folder)
            asyncio.run(_ready(url))
            raw_rate, raw_pages = asyncio.run(_baseline(url, names))
            vault = Vault(Fernet.generate_key())
            with database(root) as urls:
                ws, key = asyncio.run(_setup(urls, vault, names))
                figures = asyncio.run(_syncs(url, urls, vault, ws))
                with crier_server(urls, root, WORKERS) as base:
                    ceiling, feed = asyncio.run(_feed(base, key, int(figures["stored"] * 1.01)))
    finally:
        emulator.terminate()
        emulator.join(timeout=10)
    total = LOCATIONS * PER_LOCATION
    rate = figures["stored"] / figures["first_seconds"]
    share = figures["incremental_pages"] / figures["first_pages"]
    print(
        f"\nReview syncs: {LOCATIONS} Google locations, {total:,} reviews, on the project's "
        f"emulator (its own process); the syncer in this process, {AT_ONCE} locations at once, "
        "embedded PostgreSQL, all on this machine"
    )
    print(
        f"first sync:        {figures['stored']:,.0f} reviews stored in "
        f"{figures['first_seconds']:.1f} s = {rate:,.0f} reviews/s, "
        f"{figures['first_pages']:.0f} requests"
    )
    print(
        f"baseline:          the same {raw_pages} pages read and stored nowhere: "
        f"{raw_rate:,.0f} reviews/s; sync / baseline = {rate / raw_rate:.2f}"
    )
    print(
        f"incremental sync:  {figures['edits']:.0f} reviews changed (1%), "
        f"{figures['edits_seen']:.0f} seen, in {figures['incremental_seconds']:.1f} s, "
        f"{figures['incremental_pages']:.0f} requests = {share:.1%} of the first sync's"
    )
    lost = total - figures["stored"] + figures["edits"] - figures["edits_seen"]
    print(f"losses:            {lost:.0f} (reviews or changes not in Crier)")
    print(f"\nReview feed: {CLIENTS} concurrent aiohttp clients, `crier serve --workers {WORKERS}`")
    print(table([ceiling, feed]))
    p99 = feed.percentile(99)
    ratio = feed.rps / ceiling.rps if ceiling.rps else 0.0
    print(f"\nGET /v1/reviews p99 = {p99:.1f} ms; req/s / ceiling req/s = {ratio:.2f}")
    if feed.errors or ceiling.errors:
        print("errors were answered during the run: the figures above are not valid")


if __name__ == "__main__":
    main()
