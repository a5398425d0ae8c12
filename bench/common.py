"""What every benchmark needs: a database, a Crier server in its own process, load loops
bounded in count and time, and percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import httpx
import psycopg
from aiohttp import web

from crier.kit.db import Database, DatabaseUrls
from crier.kit.db import migrate as migrations
from crier.kit.db.embedded import EmbeddedPostgres
from crier.workspace.service import create_workspace


@contextmanager
def database(folder: Path) -> Iterator[DatabaseUrls]:
    """A migrated embedded PostgreSQL in `folder`, deleted afterwards."""
    embedded = EmbeddedPostgres(folder, delete_on_exit=True)
    urls = embedded.start()
    try:
        migrations.upgrade(urls.owner)
        yield urls
    finally:
        embedded.stop()


def settle(urls: DatabaseUrls, *tables: str) -> None:
    """Vacuum and analyze `tables`, then write out every page changed so far (CHECKPOINT),
    as the embedded server's superuser: what is timed next neither shares the 2 cores with
    an autovacuum of what was just written nor pays for writing out the pages that came
    before it."""
    superuser = urls.owner.set(drivername="postgresql", username="postgres")
    with psycopg.connect(superuser.render_as_string(hide_password=False), autocommit=True) as c:
        for table in tables:
            c.execute(f"VACUUM (ANALYZE) {table}")
        c.execute("CHECKPOINT")


async def workspace_key(urls: DatabaseUrls, name: str) -> str:
    """A new workspace on the largest plan; its owner's API key."""
    db = Database(urls, pool_size=2)
    try:
        async with db.transaction() as session:
            new = await create_workspace(
                session, name=name, plan="agency", owner_email=f"{name.lower()}@example.com"
            )
        return new.api_key_secret
    finally:
        await db.dispose()


async def receiving(
    path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> tuple[web.AppRunner, str]:
    """An HTTP server on a free loopback port answering POSTs to `path` with `handler`:
    its runner (to clean up) and its base URL."""
    app = web.Application()
    app.router.add_post(path, handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    return runner, f"http://127.0.0.1:{port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def _process(
    args: list[str], env: dict[str, str], ready_url: str, log_path: Path
) -> Iterator[None]:
    """A Crier command in its own process, until it answers `ready_url`; its log on failure."""
    with log_path.open("w") as log:
        process = subprocess.Popen(  # noqa: S603 - our own command
            [sys.executable, "-m", "crier.cli", *args], env=env, stdout=log, stderr=log
        )
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    if httpx.get(ready_url, timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if process.poll() is not None:
                    raise RuntimeError(f"crier {args[0]} exited during start-up")
                time.sleep(0.2)
            else:
                raise RuntimeError(f"crier {args[0]} did not become ready in 60 s")
            yield
        except BaseException:
            log.flush()
            print(log_path.read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            process.terminate()
            process.wait(timeout=30)


def _environment(folder: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
    env["CRIER_DATA_DIR"] = str(folder)
    # Nothing these processes are asked may make them look a Mastodon instance or a
    # Bluesky server up.
    env["CRIER_MASTODON_INSTANCES"] = "127.0.0.1:9"
    env["CRIER_BLUESKY_SERVICE_URL"] = "http://127.0.0.1:9"
    env["CRIER_BLUESKY_SERVICES"] = "127.0.0.1:9"
    return env


@contextmanager
def sandbox_server(folder: Path) -> Iterator[str]:
    """`crier sandbox` on a free loopback port, in its own process; yields its URL."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**_environment(folder), "CRIER_SANDBOX_PORT": str(port)}
    with _process(["sandbox"], env, f"{url}/control/faults", folder / "sandbox.log"):
        yield url


@contextmanager
def processes(
    commands: list[list[str]], env: dict[str, str], log: Path
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`commands` running in their own processes (output appended to `log`), stopped
    afterwards."""
    with log.open("ab") as out:
        started = [
            subprocess.Popen(command, env=env, stdout=out, stderr=out)  # noqa: S603 - ours
            for command in commands
        ]
    try:
        yield started
    finally:
        for process in started:
            process.terminate()
        for process in started:
            process.wait(timeout=30)


@contextmanager
def crier_server(
    urls: DatabaseUrls,
    folder: Path,
    workers: int = 1,
    settings: dict[str, str] | None = None,
    sandbox_url: str | None = None,
) -> Iterator[str]:
    """`crier serve` and `crier sandbox` (unless `sandbox_url` names one running) on free
    loopback ports, each in its own process, with these `CRIER_` settings too; yields the
    API's base URL."""
    port = free_port()
    env = _environment(folder)
    env.update(settings or {})
    env.update(urls.environment())
    env.update(
        CRIER_PORT=str(port),
        CRIER_DB_POOL_SIZE="20",
        CRIER_WORKERS=str(workers),
    )
    base = f"http://127.0.0.1:{port}"
    with contextlib.ExitStack() as stack:
        env["CRIER_SANDBOX_URL"] = sandbox_url or stack.enter_context(sandbox_server(folder))
        stack.enter_context(_process(["serve"], env, f"{base}/readyz", folder / "server.log"))
        yield base


@contextmanager
def crier_workers(
    urls: DatabaseUrls,
    root: Path,
    key: str,
    sandbox_url: str,
    count: int,
    log: Path,
    settings: dict[str, str] | None = None,
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` `crier worker` processes on this database (with these `CRIER_` settings
    too), stopped afterwards."""
    env = _environment(root)
    env.update(settings or {})
    env.update(urls.environment())
    env.update(
        CRIER_SANDBOX_URL=sandbox_url,
        CRIER_SECRET_KEY=key,
        CRIER_WORKER_METRICS_PORT="0",
        CRIER_ALLOW_LOOPBACK="true",  # the benchmarks' receivers are on loopback
    )
    with processes([[sys.executable, "-m", "crier.cli", "worker"]] * count, env, log) as workers:
        yield workers


@dataclass
class Measured:
    name: str
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    seconds: float = 0.0

    @property
    def rps(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))] * 1000


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300


async def load(
    name: str,
    request: Callable[[aiohttp.ClientSession, int], Awaitable[Reply]],
    session: aiohttp.ClientSession,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> Measured:
    """`concurrency` clients sending `request` until `max_requests` or `max_seconds`.

    The load comes from aiohttp: on two cores, a slower client (httpx reaches about 400
    requests/s here) would measure itself instead of the server.
    """
    measured = Measured(name)
    counter = iter(range(max_requests))
    started = time.perf_counter()
    deadline = started + max_seconds

    async def worker() -> None:
        for i in counter:
            if time.perf_counter() >= deadline:
                return
            sent = time.perf_counter()
            reply = await request(session, i)
            if reply.is_success:
                measured.latencies.append(time.perf_counter() - sent)
            else:
                measured.errors += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    measured.seconds = time.perf_counter() - started
    return measured


async def warmed_load(
    name: str,
    request: Callable[[aiohttp.ClientSession, int], Awaitable[Reply]],
    session: aiohttp.ClientSession,
    *,
    concurrency: int,
    max_requests: int,
    max_seconds: float,
) -> Measured:
    """`load`, after 200 requests (or 10 s) of warming up that are not counted."""
    await load(
        "warm-up", request, session, concurrency=concurrency, max_requests=200, max_seconds=10
    )
    return await load(
        name,
        request,
        session,
        concurrency=concurrency,
        max_requests=max_requests,
        max_seconds=max_seconds,
    )


async def send(session: aiohttp.ClientSession, method: str, url: str, json: object = None) -> Reply:
    async with session.request(method, url, json=json) as response:
        return Reply(response.status, await response.read())


def table(rows: list[Measured]) -> str:
    width = max([34, *(len(m.name) for m in rows)])
    lines = [
        f"{'endpoint':{width}} {'requests':>9} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>7}"
    ]
    for m in rows:
        lines.append(
            f"{m.name:{width}} {len(m.latencies):>9} {m.rps:>8.0f} {m.percentile(50):>8.1f} "
            f"{m.percentile(99):>8.1f} {m.errors:>7}"
        )
    return "\n".join(lines)
