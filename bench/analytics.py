"""Analytics: the nightly rollup and the views that read it.

Rollup: 1,000 workspaces, each with 10 accounts, 50 published posts and 10 metrics
observed 10 times a post (5,000,000 raw observations in all, over some 18 days), on the
embedded PostgreSQL. One day is aggregated for every workspace by the rollup's set-based
statement, then by the naive baseline in the same run: every observation up to the day's
end read row by row into Python, grouped there, and each snapshot written on its own. Both
must give the same snapshots (checked). Each side starts from a settled database (the
tables vacuumed and analyzed, then a CHECKPOINT), so that neither shares the cores with an
autovacuum of what the setup, or the other side, just wrote, nor pays for writing out the
pages they left changed. Figures: seconds each, and how many times faster.

Views: one workspace with 50 accounts and two years of daily snapshots for 10 metrics
(365,000 rows); `GET /v1/analytics/views/{id}/data` with 16 concurrent clients against
`crier serve --workers 2`, for a dashboard's view (the last 30 days, 3 metrics, beside the
previous 30) and for two years by week; p99 and the ratio to the server's ceiling
(`/readyz`). The server keeps answers until the snapshots change, as a dashboard read again
finds them; a second server that keeps none (`CRIER_ANALYTICS_CACHE_MB=0`) shows what
reading the snapshots for every request costs. The snapshots are settled (vacuumed,
analyzed, checkpointed) first, as two years of them would be. Every phase is bounded in
count and time.

Export: one workspace with 685 accounts and two years of daily snapshots for 10 metrics
(5,001,500 rows), exported as one CSV by a worker's exporter (rows through a server-side
cursor, a partition at a time, to a file, then to storage), then by the naive baseline in
the same run (every row read into memory, the CSV made as one string, then written). Each
runs in a process of its own, whose peak resident memory the kernel reports when it ends;
both files must be the same (checked). Figures: seconds, peak memory and the ratio.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from uuid import UUID

import aiohttp
from sqlalchemy import text

from bench.common import (
    Measured,
    Reply,
    crier_server,
    database,
    send,
    settle,
    table,
    warmed_load,
)
from crier.analytics import export_files, exports, repository, rollups
from crier.analytics.schemas import Metric
from crier.kit.db import Database, DatabaseUrls
from crier.kit.db.engine import SCHEDULER_ROLE
from crier.kit.ids import new_id
from crier.kit.storage import LocalStorage
from crier.kit.time import SystemClock
from crier.models import AnalyticsExport
from crier.workspace.service import create_workspace

WORKSPACES = 1000
ACCOUNTS = 10
POSTS = 50
METRICS = tuple(m.value for m in Metric)[:10]
"""impressions, reach, engagements, likes ... bookmarks: a post's figures."""
OBSERVED = 10
"""Observations of each metric of each post, 22 hours apart."""
DAY = date(2027, 6, 15)
"""The day aggregated (UTC workspaces)."""
AT_ONCE = 2
SETUP_LIMIT = 900.0
ROLLUP_LIMIT = 900.0
VIEW_ACCOUNTS = 50
VIEW_DAYS = 730
VIEW_METRICS = (*METRICS[:8], "posts_published", "followers")
CLIENTS = 16
WORKERS = 2
MAX_REQUESTS = 3000
MAX_SECONDS = 15.0
EXPORT_ACCOUNTS = 685
EXPORT_DAYS = 730
EXPORT_LIMIT = 900.0
"""Seconds an export process may take before it is stopped (and the run is invalid)."""

_MADE = text("""
WITH author AS (SELECT id FROM members LIMIT 1),
acc AS (
    INSERT INTO social_accounts (workspace_id, id, platform, external_id, handle, display_name,
                                 status)
    SELECT crier_current_workspace(), gen_random_uuid(), 'sandbox', 'acc' || g, 'acc' || g,
           'Account ' || g, 'active'
    FROM generate_series(1, :accounts) g
    RETURNING id
), numbered AS (SELECT id, row_number() OVER (ORDER BY id) AS n FROM acc),
p AS (
    INSERT INTO posts (workspace_id, id, status, payload, author_id, publish_at, published_at)
    SELECT crier_current_workspace(), gen_random_uuid(), 'published', '{}', author.id,
           CAST(:start AS timestamptz) + g * interval '4 hours',
           CAST(:start AS timestamptz) + g * interval '4 hours'
    FROM generate_series(1, :posts) g, author
    RETURNING id, published_at
), pn AS (SELECT id, published_at, row_number() OVER (ORDER BY id) AS n FROM p),
t AS (
    INSERT INTO post_targets (workspace_id, id, post_id, social_account_id)
    SELECT crier_current_workspace(), gen_random_uuid(), pn.id, numbered.id
    FROM pn JOIN numbered ON numbered.n = pn.n % :accounts + 1
    RETURNING id, post_id, social_account_id
), d AS (
    INSERT INTO deliveries (workspace_id, id, post_id, post_target_id, social_account_id,
                            platform, status, attempts, external_id, published_at)
    SELECT crier_current_workspace(), gen_random_uuid(), t.post_id, t.id,
           t.social_account_id, 'sandbox', 'published', 1, 'bench-' || t.id, pn.published_at
    FROM t JOIN pn ON pn.id = t.post_id
    RETURNING id, social_account_id, published_at
)
INSERT INTO metric_observations (workspace_id, id, social_account_id, delivery_id, metric,
                                 value, delta, observed_at)
SELECT crier_current_workspace(), gen_random_uuid(), g.social_account_id, g.id, g.m, g.value,
       g.value - coalesce(lag(g.value) OVER (PARTITION BY g.id, g.m ORDER BY g.k), 0), g.at
FROM (
    SELECT d.social_account_id, d.id, m, k, k * 10 + floor(random() * 10) AS value,
           d.published_at + k * interval '22 hours' AS at
    FROM d, unnest(CAST(:metrics AS text[])) AS m, generate_series(1, :observed) k
) AS g
""")

_READ_TABLES = ("metric_observations", "deliveries")
"""What the rollup reads, settled before each side. The snapshots too before the naive
side, which finds them just deleted; not before the set-based one, which finds them never
written: statistics taken of an empty table (as no live one has) would give its prepared
plan a sequential scan of a table that grows by 100,000 rows as it runs."""
_NAIVE_READ = text("""
SELECT social_account_id, delivery_id, metric, value, observed_at FROM metric_observations
WHERE workspace_id = crier_current_workspace() AND delivery_id IS NOT NULL
  AND observed_at < :ends
""")
_NAIVE_WRITE = text("""
INSERT INTO analytics_snapshots (workspace_id, id, social_account_id, metric, value, date)
VALUES (crier_current_workspace(), :id, :account, :metric, :value, :date)
ON CONFLICT (workspace_id, social_account_id, metric, date)
DO UPDATE SET value = EXCLUDED.value
""")
_SNAPSHOTS = text("""
SELECT social_account_id, metric, value FROM analytics_snapshots
WHERE workspace_id = crier_current_workspace() AND date = :day
""")


async def _bounded(items: list[Any], work: Any, limit: float, what: str) -> float:
    """`work(item)` for each item, `AT_ONCE` at a time; the seconds it took."""
    started = time.perf_counter()
    slots = asyncio.Semaphore(AT_ONCE)

    async def one(item: Any) -> None:
        async with slots:
            if time.perf_counter() - started > limit:
                raise RuntimeError(f"{what} took more than {limit:.0f} s")
            await work(item)

    await asyncio.gather(*(one(item) for item in items))
    return time.perf_counter() - started


async def _setup(db: Database) -> tuple[list[UUID], float]:
    workspaces: list[UUID] = []
    start = datetime.combine(DAY - timedelta(days=9), clock_time(), UTC)

    async def make(n: int) -> None:
        async with db.transaction() as session:
            new = await create_workspace(
                session, name=f"Bench {n}", plan="agency", owner_email=f"b{n}@example.com"
            )
        async with db.workspace_transaction(new.workspace.id) as session:
            await session.execute(
                _MADE,
                {
                    "accounts": ACCOUNTS,
                    "posts": POSTS,
                    "start": start,
                    "metrics": list(METRICS),
                    "observed": OBSERVED,
                },
            )
        workspaces.append(new.workspace.id)

    seconds = await _bounded(list(range(WORKSPACES)), make, SETUP_LIMIT, "setting up")
    return workspaces, seconds


async def _snapshots(db: Database, ws: UUID) -> dict[tuple[UUID, str], float]:
    async with db.workspace_transaction(ws) as session:
        rows = await session.execute(_SNAPSHOTS, {"day": DAY})
        return {(r.social_account_id, r.metric): float(r.value) for r in rows}


async def _naive(db: Database, ws: UUID) -> None:
    """One day the naive way: every observation up to the day's end into Python."""
    starts = datetime.combine(DAY, clock_time(), UTC)
    ends = starts + timedelta(days=1)
    before: dict[tuple[UUID, str], tuple[datetime, float]] = {}
    within: dict[tuple[UUID, str], tuple[datetime, float, UUID]] = {}
    async with db.workspace_transaction(ws) as session:
        for row in await session.execute(_NAIVE_READ, {"ends": ends}):
            key = (row.delivery_id, row.metric)
            if row.observed_at < starts:
                if key not in before or before[key][0] < row.observed_at:
                    before[key] = (row.observed_at, row.value)
            elif key not in within or within[key][0] < row.observed_at:
                within[key] = (row.observed_at, row.value, row.social_account_id)
        sums: dict[tuple[UUID, str], float] = defaultdict(float)
        for key, (_, value, account) in within.items():
            sums[(account, key[1])] += value - before.get(key, (starts, 0.0))[1]
        for (account, metric), value in sums.items():
            await session.execute(
                _NAIVE_WRITE,
                {"id": new_id(), "account": account, "metric": metric, "value": value, "date": DAY},
            )


async def _rollups(urls: DatabaseUrls) -> dict[str, float]:
    db = Database(urls, pool_size=AT_ONCE + 1)
    try:
        workspaces, setup = await _setup(db)
        observed = 0
        for ws in workspaces:
            async with db.workspace_transaction(ws) as session:
                counted = "SELECT count(*) FROM metric_observations"
                observed += (await session.execute(text(counted))).scalar_one()
        now = datetime.now(UTC)

        async def set_based(ws: UUID) -> None:
            await rollups.rebuild(db, ws, DAY, DAY, now)

        settle(urls, *_READ_TABLES)
        fast = await _bounded(workspaces, set_based, ROLLUP_LIMIT, "the rollup")
        made = {ws: await _snapshots(db, ws) for ws in workspaces[:50]}
        for ws in workspaces:  # the baseline starts from nothing too
            async with db.workspace_transaction(ws) as session:
                await session.execute(text("DELETE FROM analytics_snapshots"))

        async def naive(ws: UUID) -> None:
            await _naive(db, ws)

        settle(urls, *_READ_TABLES, "analytics_snapshots")
        slow = await _bounded(workspaces, naive, ROLLUP_LIMIT * 4, "the naive rollup")
        differ = 0
        for ws, expected in made.items():
            found = await _snapshots(db, ws)
            differ += sum(
                1 for k in expected.keys() | found.keys() if expected.get(k) != found.get(k)
            )
        rows = sum(len(m) for m in made.values()) / len(made)
        return {
            "setup": setup,
            "observed": float(observed),
            "fast": fast,
            "slow": slow,
            "differ": float(differ),
            "rows": rows,
        }
    finally:
        await db.dispose()


_VIEW_DATA = text("""
WITH acc AS (
    INSERT INTO social_accounts (workspace_id, id, platform, external_id, handle, display_name,
                                 status)
    SELECT crier_current_workspace(), gen_random_uuid(), 'sandbox', 'v' || g, 'v' || g,
           'Account ' || g, 'active'
    FROM generate_series(1, :accounts) g
    RETURNING id
)
INSERT INTO analytics_snapshots (workspace_id, id, social_account_id, metric, value, date)
SELECT crier_current_workspace(), gen_random_uuid(), acc.id, m,
       CASE WHEN m = 'followers' THEN 1000 + n ELSE floor(random() * 100) END,
       CAST(:last AS date) - n
FROM acc, unnest(CAST(:metrics AS text[])) AS m, generate_series(0, :days - 1) n
""")


async def _view_setup(urls: DatabaseUrls) -> str:
    db = Database(urls, pool_size=2)
    try:
        async with db.transaction() as session:
            new = await create_workspace(
                session, name="Views", plan="agency", owner_email="views@example.com"
            )
        async with db.workspace_transaction(new.workspace.id) as session:
            await session.execute(
                _VIEW_DATA,
                {
                    "accounts": VIEW_ACCOUNTS,
                    "metrics": list(VIEW_METRICS),
                    "days": VIEW_DAYS,
                    "last": datetime.now(UTC).date(),
                },
            )
        return new.api_key_secret
    finally:
        await db.dispose()


async def _views(base: str, key: str, kept: bool = True) -> list[Measured]:
    """The ceiling and the two views' data; `kept`: whether the server keeps answers
    (else each request reads the snapshots)."""
    headers = {"Authorization": f"Bearer {key}"}
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    suffix = "" if kept else ", nothing kept"
    async with aiohttp.ClientSession(base, headers=headers, connector=connector) as session:
        made = []
        for body in (
            {
                "name": f"Dashboard{suffix}",
                "metrics": ["impressions", "engagements", "followers"],
                "range": "last_30_days",
                "comparison": "previous_period",
            },
            {
                "name": f"Two years{suffix}",
                "metrics": ["impressions", "engagements", "followers"],
                "range": {
                    "from": str(datetime.now(UTC).date() - timedelta(days=VIEW_DAYS - 1)),
                    "to": str(datetime.now(UTC).date()),
                },
                "granularity": "week",
            },
        ):
            reply = await send(session, "POST", "/v1/analytics/views", json=body)
            if reply.status != 201:
                raise RuntimeError(f"the view was refused: {reply.body!r}")
            made.append(json.loads(reply.body)["id"])

        async def ceiling(s: aiohttp.ClientSession, _: int) -> Reply:
            return await send(s, "GET", "/readyz")

        def data(view: str) -> Any:
            async def request(s: aiohttp.ClientSession, _: int) -> Reply:
                return await send(s, "GET", f"/v1/analytics/views/{view}/data")

            return request

        results = []
        for name, request in (
            ("GET /readyz (ceiling)", ceiling),
            (f"view data: 30 days, 3 metrics, vs 30{suffix}", data(made[0])),
            (f"view data: 2 years by week{suffix}", data(made[1])),
        ):
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


_EXPORT_DATA = text("""
WITH acc AS (
    INSERT INTO social_accounts (workspace_id, id, platform, external_id, handle, display_name,
                                 status)
    SELECT crier_current_workspace(), gen_random_uuid(), 'sandbox', 'e' || g, 'e' || g,
           'Account ' || g, 'active'
    FROM generate_series(1, :accounts) g
    RETURNING id
)
-- In the order of the table's keys, ids ascending: the indexes grow at their ends.
INSERT INTO analytics_snapshots (workspace_id, id, social_account_id, metric, value, date)
SELECT crier_current_workspace(),
       CAST(lpad(to_hex(row_number() OVER (ORDER BY acc.id, m, n)), 32, '0') AS uuid),
       acc.id, m, CASE WHEN m = 'followers' THEN 1000 + n ELSE floor(random() * 100) END,
       CAST(:last AS date) - n
FROM acc, unnest(CAST(:metrics AS text[])) AS m, generate_series(0, :days - 1) n
ORDER BY acc.id, m, n
""")


async def _export_setup(urls: DatabaseUrls) -> tuple[UUID, UUID, int]:
    """The export's workspace, its snapshots and a queued CSV export of them all."""
    db = Database(urls, pool_size=2)
    try:
        async with db.transaction() as session:
            new = await create_workspace(
                session, name="Exports", plan="agency", owner_email="exports@example.com"
            )
        ws = new.workspace.id
        async with db.workspace_transaction(ws) as session:
            await session.execute(
                _EXPORT_DATA,
                {
                    "accounts": EXPORT_ACCOUNTS,
                    "metrics": list(VIEW_METRICS),
                    "days": EXPORT_DAYS,
                    "last": DAY,
                },
            )
            export = AnalyticsExport(
                workspace_id=ws,
                id=new_id(),
                format="csv",
                title="Everything",
                metrics=list(VIEW_METRICS),
                first_day=DAY - timedelta(days=EXPORT_DAYS - 1),
                last_day=DAY,
                granularity="day",
            )
            session.add(export)
            rows = (
                await session.execute(text("SELECT count(*) FROM analytics_snapshots"))
            ).scalar_one()
        async with db.engine.connect() as conn:  # ANALYZE runs outside a transaction
            auto = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await auto.execute(text("ANALYZE analytics_snapshots"))
        return ws, export.id, int(rows)
    finally:
        await db.dispose()


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


async def _export_child(mode: str, ws: UUID, export_id: UUID, folder: Path) -> dict[str, Any]:
    """One export in this process: the exporter's, or the naive baseline's."""
    urls = DatabaseUrls.from_strings(
        os.environ["BENCH_OWNER_URL"], os.environ["BENCH_APP_URL"], None
    )
    db = Database(urls, pool_size=3)
    scheduler_db = Database(urls, pool_size=1, role=SCHEDULER_ROLE)
    idle = _rss_kib()
    started = time.perf_counter()
    try:
        if mode == "stream":
            storage = LocalStorage(folder)
            exporter = exports.Exporter(db, scheduler_db, storage, SystemClock(), "bench")
            if not await exporter.run(ws, export_id):
                raise RuntimeError("the export was not written")
            async with db.workspace_transaction(ws) as session:
                found = await repository.export(session, export_id)
                assert found is not None
                assert found.file_path is not None
                path, rows = storage.local_path(found.file_path), found.rows_written
        else:
            async with db.workspace_transaction(ws) as session:
                found = await repository.export(session, export_id)
                assert found is not None
                spec = exports.spec_of(found, "UTC")
                state, parts = await exports.read_rows(session, spec)
                everything = [row async for part in parts for row in part]
            whole = export_files.csv_text(
                everything, state.accounts, state.before, with_header=True
            )
            path, rows = folder / "naive.csv", len(everything)
            path.write_text(whole, encoding="utf-8", newline="")
        seconds = time.perf_counter() - started
        with path.open("rb") as written:  # a chunk at a time: the check adds no memory
            digest = hashlib.file_digest(written, "sha256").hexdigest()
        return {"seconds": seconds, "rows": rows, "idle_kib": idle, "sha256": digest}
    finally:
        await db.dispose()
        await scheduler_db.dispose()


def _run_export(
    mode: str, urls: DatabaseUrls, ws: UUID, export_id: UUID, folder: Path
) -> dict[str, Any]:
    """`_export_child` in a new process; what it printed, with its peak memory."""
    env = {
        **os.environ,
        "BENCH_OWNER_URL": urls.owner.render_as_string(hide_password=False),
        "BENCH_APP_URL": urls.app.render_as_string(hide_password=False),
    }
    folder.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(  # noqa: S603 (this interpreter, our own arguments)
        [
            sys.executable,
            "-m",
            "bench.analytics",
            "export",
            mode,
            str(ws),
            str(export_id),
            str(folder),
        ],
        env=env,
        stdout=subprocess.PIPE,
    )
    timer = threading.Timer(EXPORT_LIMIT, child.kill)
    timer.start()
    try:
        assert child.stdout is not None
        out = child.stdout.read()
        # This child's own resource use, its peak resident memory among it (KiB on Linux).
        _, status, usage = os.wait4(child.pid, 0)
    finally:
        timer.cancel()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"the {mode} export failed ({child.returncode})")
    found: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    found["peak_kib"] = usage.ru_maxrss
    return found


def _exports(urls: DatabaseUrls, root: Path) -> dict[str, Any]:
    started = time.perf_counter()
    ws, export_id, rows = asyncio.run(_export_setup(urls))
    setup = time.perf_counter() - started
    stream = _run_export("stream", urls, ws, export_id, root / "stream")
    naive = _run_export("naive", urls, ws, export_id, root / "naive")
    return {"setup": setup, "rows": rows, "stream": stream, "naive": naive}


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="crier-bench-") as folder:
        root = Path(folder)
        with database(root) as urls:
            figures = asyncio.run(_rollups(urls))
            key = asyncio.run(_view_setup(urls))
            settle(urls, "analytics_snapshots")
            with crier_server(urls, root, WORKERS) as base:
                ceiling, dashboard, long = asyncio.run(_views(base, key))
            with crier_server(urls, root, WORKERS, {"CRIER_ANALYTICS_CACHE_MB": "0"}) as base:
                _, dashboard_read, long_read = asyncio.run(_views(base, key, kept=False))
            exported = _exports(urls, root)
    speedup = figures["slow"] / figures["fast"] if figures["fast"] else 0.0
    print(
        f"\nAnalytics rollup: {WORKSPACES:,} workspaces x {ACCOUNTS} accounts x "
        f"{len(METRICS)} metrics, {figures['observed']:,.0f} raw observations "
        f"(set up in {figures['setup']:.0f} s), one day aggregated, {AT_ONCE} at once, "
        "embedded PostgreSQL"
    )
    print(
        f"set-based rollup:  {figures['fast']:.1f} s "
        f"({WORKSPACES / figures['fast']:,.0f} workspaces/s, {figures['rows']:.0f} snapshots each)"
    )
    print(
        f"naive baseline:    {figures['slow']:.1f} s (every observation up to the day's end "
        "read into Python, grouped there, each snapshot written alone)"
    )
    print(f"speed-up:          {speedup:.1f}x (target: at least 20x)")
    print(f"differences:       {figures['differ']:.0f} snapshots (the two must agree)")
    print(
        f"\nView data: {VIEW_ACCOUNTS} accounts, {VIEW_DAYS} days x {len(VIEW_METRICS)} metrics of "
        f"snapshots; {CLIENTS} concurrent aiohttp clients, `crier serve --workers {WORKERS}`"
    )
    print(
        "Answers are kept in each API process until the snapshots change (as a dashboard "
        "reads them again); `nothing kept` reads the snapshots for every request "
        "(CRIER_ANALYTICS_CACHE_MB=0)."
    )
    print(table([ceiling, dashboard, long, dashboard_read, long_read]))
    for measured in (dashboard, long):
        ratio = measured.rps / ceiling.rps if ceiling.rps else 0.0
        print(
            f"{measured.name}: p99 = {measured.percentile(99):.1f} ms (target: under 50 ms); "
            f"req/s / ceiling req/s = {ratio:.2f}"
        )
    for measured, read in ((dashboard, dashboard_read), (long, long_read)):
        speedup = read.percentile(99) / measured.percentile(99) if measured.percentile(99) else 0
        print(f"{read.name}: p99 = {read.percentile(99):.1f} ms ({speedup:.1f}x the kept p99)")
    if any(m.errors for m in (ceiling, dashboard, long, dashboard_read, long_read)):
        print("errors were answered during the run: the figures above are not valid")
    stream, naive = exported["stream"], exported["naive"]
    print(
        f"\nCSV export: {exported['rows']:,} snapshot rows ({EXPORT_ACCOUNTS} accounts x "
        f"{EXPORT_DAYS} days x {len(VIEW_METRICS)} metrics, set up in {exported['setup']:.0f} s), "
        "each export in a process of its own"
    )
    for name, run in (("exporter (streamed)", stream), ("naive baseline", naive)):
        print(
            f"{name:20} {run['seconds']:6.1f} s, {run['rows']:,} rows, peak memory "
            f"{run['peak_kib'] / 1024:,.0f} MiB ({run['idle_kib'] / 1024:,.0f} MiB before it began)"
        )
    print(
        f"peak memory: {stream['peak_kib'] / 1024:,.0f} MiB (target: under 150 MB); "
        f"naive / streamed = {naive['peak_kib'] / stream['peak_kib']:.1f}x"
    )
    print(f"files identical:     {stream['sha256'] == naive['sha256']}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["export"]:
        mode, ws, export_id, folder = sys.argv[2:6]
        print(json.dumps(asyncio.run(_export_child(mode, UUID(ws), UUID(export_id), Path(folder)))))
    else:
        main()
