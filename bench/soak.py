"""A soak: several processes under a mixed load for 10 minutes, nothing lost or doubled.

Embedded PostgreSQL, `crier serve --workers 2` (two API processes), three `crier worker`
processes, `crier sandbox` answering every call after 100 ms, and a webhook receiver in
this process. For `SECONDS`, at a steady pace:

- creates: posts with two targets, most due within the next minute (locked at once), some
  due `LATER` (beyond the 5-minute lock, so they can still change), those only while they
  fall due within the load's time;
- edits and cancels of those later posts in the minute before they lock (`PATCH` with
  `If-Match`, `POST .../cancel`);
- the webhooks every step of every post makes, to one endpoint;
- metric fetches: each published delivery measured one and five minutes after publishing.

Then it waits for every post still due, and checks at the sandbox that each delivery of a
post not cancelled was published exactly once, with the text it had last, and that no
cancelled post's delivery was sent. It prints the API's throughput and p99 by kind, the
lateness of posts at the sandbox, the webhooks received (duplicates by `webhook-id`), the
metric fetches made, and the database's size: at the start, halfway and at the end, with
the growth per day of such load taken from the second half (webhook events are kept 30 days,
so until then they add to it; retention runs, but nothing here is old enough for it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import httpx
import psycopg
from aiohttp import web
from cryptography.fernet import Fernet
from tests.pgbouncer import through_pgbouncer

from bench.common import (
    Measured,
    crier_server,
    crier_workers,
    database,
    receiving,
    sandbox_server,
    workspace_key,
)
from crier.kit.db import DatabaseUrls

SECONDS = 600
API_PROCESSES, WORKERS = 2, 3
ACCOUNTS = 10
CREATES_PER_SECOND = 20
LATER_SHARE = 0.3
"""Of the creates, those due `LATER`: the ones edited and cancelled."""
LATER = timedelta(minutes=6)
CHANGE_WITHIN = 50.0
"""Seconds after its creation that a post due `LATER` is still edited or cancelled: it
locks 5 minutes before it is due, a minute after its creation."""
EDITS_PER_SECOND, CANCELS_PER_SECOND = 4, 1
LATENCY_MS = 100
DRAIN_LIMIT = 600.0
"""Seconds after the last post's due time before what is still unsent counts as lost."""
PACE = 0.05
"""Seconds between rounds of requests."""


@dataclass
class Hooks:
    """The webhook receiver: every call's `webhook-id`, and how many came twice."""

    ids: set[str] = field(default_factory=set)
    duplicates: int = 0
    types: dict[str, int] = field(default_factory=dict)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        event_id = request.headers["webhook-id"]
        if event_id in self.ids:
            self.duplicates += 1
        self.ids.add(event_id)
        self.types[body["type"]] = self.types.get(body["type"], 0) + 1
        return web.Response(status=204)


@dataclass
class Plan:
    """What the load did, to check the outcome against."""

    due: dict[str, datetime] = field(default_factory=dict)
    """Each post's due time."""
    texts: dict[str, str] = field(default_factory=dict)
    """Each post's text as it stands after the edits."""
    etags: dict[str, str] = field(default_factory=dict)
    changeable: list[tuple[str, float]] = field(default_factory=list)
    """Posts due `LATER`, not yet edited or cancelled, and when each was made (monotonic),
    in that order."""
    cancelled: set[str] = field(default_factory=set)
    measured: dict[str, Measured] = field(default_factory=dict)

    def record(self, kind: str, seconds: float, ok: bool) -> None:
        m = self.measured.setdefault(kind, Measured(kind))
        if ok:
            m.latencies.append(seconds)
        else:
            m.errors += 1


async def _call(
    session: aiohttp.ClientSession,
    plan: Plan,
    kind: str,
    method: str,
    url: str,
    body: object = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, object], str]:
    started = time.perf_counter()
    async with session.request(method, url, json=body, headers=headers) as response:
        raw = await response.read()
        etag = response.headers.get("etag", "")
    plan.record(kind, time.perf_counter() - started, 200 <= response.status < 300)
    return response.status, (json.loads(raw) if raw else {}), etag


def _changeable(plan: Plan) -> str | None:
    """A post due `LATER` that may still change, taken off the list."""
    while plan.changeable and plan.changeable[0][1] < time.monotonic() - CHANGE_WITHIN:
        plan.changeable.pop(0)
    if not plan.changeable:
        return None
    return plan.changeable.pop(random.randrange(len(plan.changeable)))[0]


async def _create(
    session: aiohttp.ClientSession, plan: Plan, accounts: list[str], n: int, later: bool
) -> None:
    due = datetime.now(UTC) + (LATER if later else timedelta(seconds=random.uniform(15, 60)))
    text = f"Soak post {n}"
    pair = random.sample(accounts, 2)
    status, body, etag = await _call(
        session,
        plan,
        "POST /v1/posts",
        "POST",
        "/v1/posts",
        {
            "payload": {"text": text},
            "targets": [{"social_account_id": a} for a in pair],
            "status": "scheduled",
            "publish_at": due.isoformat(),
        },
    )
    if status == 201:
        post = str(body["id"])
        plan.due[post], plan.texts[post], plan.etags[post] = due, text, etag
        if later:
            plan.changeable.append((post, time.monotonic()))


async def _edit(session: aiohttp.ClientSession, plan: Plan) -> None:
    post = _changeable(plan)
    if post is None:
        return
    text = plan.texts[post] + " (edited)"
    status, _, etag = await _call(
        session,
        plan,
        "PATCH /v1/posts/{id}",
        "PATCH",
        f"/v1/posts/{post}",
        {"payload": {"text": text}},
        {"If-Match": plan.etags[post]},
    )
    if status == 200:
        plan.texts[post], plan.etags[post] = text, etag


async def _cancel(session: aiohttp.ClientSession, plan: Plan) -> None:
    post = _changeable(plan)
    if post is None:
        return
    status, _, _ = await _call(
        session, plan, "POST /v1/posts/{id}/cancel", "POST", f"/v1/posts/{post}/cancel"
    )
    if status == 200:
        plan.cancelled.add(post)


def _superuser(urls: DatabaseUrls) -> str:
    """The embedded server's superuser, which sees every workspace's rows."""
    login = urls.owner.set(drivername="postgresql", username="postgres")
    return login.render_as_string(hide_password=False)


def _size(urls: DatabaseUrls) -> int:
    with psycopg.connect(_superuser(urls)) as conn:
        row = conn.execute("SELECT pg_database_size(current_database())").fetchone()
        assert row is not None
        return int(row[0])


def _count(urls: DatabaseUrls, query: str) -> int:
    with psycopg.connect(_superuser(urls)) as conn:
        row = conn.execute(query).fetchone()
        assert row is not None
        return int(row[0])


async def _load(base: str, key: str, plan: Plan, seconds: float, urls: DatabaseUrls) -> list[int]:
    """The mixed load for `seconds` (bounded in time and count); the database's size at the
    start, halfway and at the end."""
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=32)
    sizes = [_size(urls)]
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        accounts = []
        for _ in range(ACCOUNTS):
            status, body, _ = await _call(
                session, plan, "setup", "POST", "/v1/social-accounts", {"platform": "sandbox"}
            )
            assert status == 201, body
            accounts.append(str(body["id"]))
        started = time.monotonic()
        # Changes only to posts created early enough to be due after the load: any later
        # would be due after it, which the drain waits for anyway.
        # Posts due `LATER` only while they fall due within the load's time, so that the
        # drain after it stays short.
        last_later = seconds - LATER.total_seconds()
        made = 0
        halfway = False
        rounds = int(seconds / PACE) + 1
        for i in range(rounds):
            elapsed = time.monotonic() - started
            if elapsed >= seconds:
                break
            if not halfway and elapsed >= seconds / 2:
                sizes.append(_size(urls))
                halfway = True
            jobs = []
            while made < CREATES_PER_SECOND * elapsed:
                later = elapsed < last_later and random.random() < LATER_SHARE
                jobs.append(_create(session, plan, accounts, made, later))
                made += 1
            if random.random() < EDITS_PER_SECOND * PACE:
                jobs.append(_edit(session, plan))
            if random.random() < CANCELS_PER_SECOND * PACE:
                jobs.append(_cancel(session, plan))
            await asyncio.gather(*jobs)
            await asyncio.sleep(max(0.0, started + (i + 1) * PACE - time.monotonic()))
    sizes.append(_size(urls))
    return sizes


async def _received(sandbox: str) -> list[dict[str, object]]:
    async with httpx.AsyncClient(base_url=sandbox, timeout=60) as client:
        data: list[dict[str, object]] = (await client.get("/control/received")).json()["data"]
        return data


async def _run(seconds: float, pooled: bool = False) -> None:
    hooks = Hooks()
    runner, hooks_url = await receiving("/hooks", hooks.handle)
    vault_key = Fernet.generate_key().decode()
    plan = Plan()
    settings = {
        "CRIER_SECRET_KEY": vault_key,
        "CRIER_ALLOW_LOOPBACK": "true",
        "CRIER_METRICS_SCHEDULE": "1m,5m",
    }
    try:
        with tempfile.TemporaryDirectory(prefix="crier-soak-") as folder:
            root = Path(folder)
            with contextlib.ExitStack() as stack:
                urls = stack.enter_context(database(root / "db"))
                if pooled:  # the API and the workers through PgBouncer, LISTEN direct
                    urls = stack.enter_context(through_pgbouncer(urls, root / "pgbouncer"))
                    print(f"through PgBouncer (transaction pooling) at {urls.app.port}")
                await _soak(root, urls, hooks_url, hooks, vault_key, plan, settings, seconds)
    finally:
        await runner.cleanup()


async def _soak(
    root: Path,
    urls: DatabaseUrls,
    hooks_url: str,
    hooks: Hooks,
    vault_key: str,
    plan: Plan,
    settings: dict[str, str],
    seconds: float,
) -> None:
    with (
        sandbox_server(root) as sandbox,
        crier_server(urls, root, API_PROCESSES, settings, sandbox_url=sandbox) as base,
        crier_workers(urls, root, vault_key, sandbox, WORKERS, root / "workers.log", settings),
    ):
        key = await workspace_key(urls, "Soak")
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}
        ) as client:
            made = await client.post("/v1/webhook-endpoints", json={"url": f"{hooks_url}/hooks"})
            assert made.status_code == 201, made.text
        async with httpx.AsyncClient(base_url=sandbox) as client:
            await client.put("/control/faults", json={"latency_ms": LATENCY_MS})
        sizes = await _load(base, key, plan, seconds, urls)
        live = {p: due for p, due in plan.due.items() if p not in plan.cancelled}
        last_due = max(live.values(), default=datetime.now(UTC))
        deadline = (
            time.monotonic()
            + max(0.0, (last_due - datetime.now(UTC)).total_seconds())
            + DRAIN_LIMIT
        )
        query = "SELECT count(*) FROM posts WHERE status IN ('scheduled', 'queued', 'publishing')"
        while time.monotonic() < deadline:
            if not _count(urls, query):
                break
            await asyncio.sleep(2)
        unsettled = _count(urls, query)
        # Then the webhooks: every event the load made is delivered to the receiver.
        pending = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
        deadline = time.monotonic() + DRAIN_LIMIT
        for _ in range(int(DRAIN_LIMIT)):  # bounded: one look a second
            if time.monotonic() >= deadline or not _count(urls, pending):
                break
            await asyncio.sleep(1)
        webhooks = _count(urls, "SELECT count(*) FROM webhook_deliveries"), _count(urls, pending)
        fetches = _count(urls, "SELECT count(*) FROM metric_observations")
        received = await _received(sandbox)
        deliveries = _deliveries(urls)
        sizes.append(_size(urls))
    _report(plan, hooks, received, deliveries, sizes, seconds, unsettled, fetches, webhooks)


def _deliveries(urls: DatabaseUrls) -> dict[str, tuple[str, str]]:
    """Each delivery's post and status."""
    with psycopg.connect(_superuser(urls)) as conn:
        rows = conn.execute("SELECT id::text, post_id::text, status FROM deliveries").fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


def _pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def _report(
    plan: Plan,
    hooks: Hooks,
    received: list[dict[str, object]],
    deliveries: dict[str, tuple[str, str]],
    sizes: list[int],
    seconds: float,
    unsettled: int,
    fetches: int,
    webhooks: tuple[int, int],
) -> None:
    sent: dict[str, list[dict[str, object]]] = {}
    for call in received:
        sent.setdefault(str(call["idempotency_key"]), []).append(call)
    doubled = sum(len(calls) - 1 for calls in sent.values() if len(calls) > 1)
    lost = wrong_text = sent_cancelled = 0
    lateness = []
    for delivery, (post, _) in deliveries.items():
        calls = sent.get(delivery, [])
        if post in plan.cancelled:
            sent_cancelled += len(calls)
            continue
        if not calls:
            lost += 1
            continue
        if calls[0]["text"] != plan.texts.get(post):
            wrong_text += 1
        at = float(str(calls[0]["received_at"]))
        lateness.append((at - plan.due[post].timestamp()) * 1000)
    print(
        f"\nSoak: {seconds / 60:.0f} minutes, {API_PROCESSES} API processes, {WORKERS} workers, "
        f"embedded PostgreSQL, sandbox answering after {LATENCY_MS} ms, all on this machine"
    )
    print(f"{'requests':28} {'count':>7} {'req/s':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}")
    for m in plan.measured.values():
        if m.name == "setup":
            continue
        print(
            f"{m.name:28} {len(m.latencies):>7} {len(m.latencies) / seconds:>7.1f} "
            f"{m.percentile(50):>8.1f} {m.percentile(99):>8.1f} {m.errors:>7}"
        )
    live = [p for p in plan.due if p not in plan.cancelled]
    print(
        f"posts {len(plan.due)} ({len(plan.cancelled)} cancelled), deliveries "
        f"{len(deliveries)}; published at the sandbox {len(sent)}; lateness p50 "
        f"{_pct(lateness, 50):.0f} ms, p99 {_pct(lateness, 99):.0f} ms, max "
        f"{max(lateness, default=float('nan')):.0f} ms"
    )
    print(
        f"lost {lost}, sent twice {doubled}, sent with an old text {wrong_text}, cancelled "
        f"but sent {sent_cancelled}, posts still unsettled {unsettled} (of {len(live)})"
    )
    print(
        f"webhooks received {len(hooks.ids)} ({hooks.duplicates} twice by webhook-id): "
        + ", ".join(f"{t} {n}" for t, n in sorted(hooks.types.items()))
    )
    made, pending = webhooks
    unreceived = made - len(hooks.ids)
    print(f"webhook deliveries made {made}, not received {unreceived}, still pending {pending}")
    print(f"metric observations {fetches}")
    start, half, end, drained = sizes
    per_day = (end - half) / (seconds / 2) * 86400
    print(
        f"database {start / 2**20:.0f} MiB at the start, {half / 2**20:.0f} halfway, "
        f"{end / 2**20:.0f} at the end of the load, {drained / 2**20:.0f} once drained; "
        f"growth at this load {per_day / 2**30:.1f} GiB per day (from the second half)"
    )
    clean = not (lost or doubled or wrong_text or sent_cancelled or unsettled or unreceived)
    print(f"nothing lost or doubled: {'met' if clean else 'NOT met'}")


def main(seconds: float = SECONDS) -> None:
    """`python -m bench soak`."""
    asyncio.run(_run(seconds))


def through_pgbouncer_main(seconds: float = SECONDS) -> None:
    """`python -m bench soak-pgbouncer`: the same soak with the API's and the workers'
    connections through PgBouncer in transaction pooling mode (`make pgbouncer` first)."""
    asyncio.run(_run(seconds, pooled=True))
