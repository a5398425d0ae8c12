"""The scheduler benchmark's baseline: the same posts published through procrastinate.

Each post is a procrastinate job deferred with `schedule_at` = its publish time; two worker
processes (as many as Crier's), each running up to `CONCURRENCY` jobs at once, POST it to the
same sandbox with the same idempotency key Crier would use (the sandbox adds the same
latency). Workers poll every `POLL_SECONDS` for jobs that have fallen due (procrastinate
hears of new jobs by LISTEN/NOTIFY, but not of a scheduled one becoming due) and retry a
failed call twice, as Crier does.

A worker writes the job's key on a line for every job run, so that the benchmark sees when
all have run; lateness and duplicates it measures at the sandbox, as for Crier.

`work(records file)` is one worker process (started by `workers`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from procrastinate import App, PsycopgConnector, RetryStrategy

from bench.common import processes

DSN = "CRIER_BENCH_PROCRASTINATE_DSN"
SANDBOX = "CRIER_BENCH_SANDBOX_URL"
CONCURRENCY = 100
"""Jobs in flight per worker process: enough for 1,000 calls a second of 100 ms each on two."""
POLL_SECONDS = 0.05

app = App(connector=PsycopgConnector(conninfo=os.environ.get(DSN, ""), max_size=20))
_client: httpx.AsyncClient | None = None
_records: Any = None


@app.task(name="publish", retry=RetryStrategy(max_attempts=2, exponential_wait=1))
async def publish(token: str, text: str, key: str) -> None:
    global _client
    if _client is None:
        _client = httpx.AsyncClient(
            base_url=os.environ[SANDBOX],
            timeout=15,
            limits=httpx.Limits(max_connections=CONCURRENCY),
        )
    response = await _client.post(
        "/v1/posts",
        json={"text": text, "media": []},
        headers={"Authorization": f"Bearer {token}", "Idempotency-Key": key},
    )
    response.raise_for_status()
    _records.write(f"{key}\n")
    _records.flush()


async def defer(dsn: str, jobs: list[tuple[datetime, str, str, str]]) -> None:
    """Install procrastinate's schema and defer one job per (due, token, text, key)."""
    with app.replace_connector(PsycopgConnector(conninfo=dsn)) as connected:
        async with connected.open_async():
            await connected.schema_manager.apply_schema_async()
            for start in range(0, len(jobs), 1000):
                await connected.job_manager.batch_defer_jobs_async(
                    [
                        publish.configure(schedule_at=due).make_new_job(
                            token=token, text=text, key=key
                        )
                        for due, token, text, key in jobs[start : start + 1000]
                    ]
                )


@contextmanager
def workers(dsn: str, sandbox: str, count: int, folder: Path) -> Iterator[list[Path]]:
    """`count` procrastinate worker processes; yields the files they record runs in."""
    env = {**os.environ, DSN: dsn, SANDBOX: sandbox}
    records = [folder / f"procrastinate-{i}.runs" for i in range(count)]
    commands = [[sys.executable, "-c", _WORKER, str(path)] for path in records]
    with processes(commands, env, folder / "procrastinate-workers.log"):
        yield records


def ran(records: list[Path]) -> set[str]:
    """The keys of every job that has run."""
    return {key for path in records if path.exists() for key in path.read_text().splitlines()}


_WORKER = "import sys; from bench.procrastinate_baseline import work; work(sys.argv[1])"


def work(records: str) -> None:
    """Run jobs until SIGTERM, recording each run in `records`."""
    asyncio.run(_work(Path(records)))


async def _work(records: Path) -> None:
    global _records
    _records = records.open("a")
    async with app.open_async():
        await app.run_worker_async(
            concurrency=CONCURRENCY,
            fetch_job_polling_interval=POLL_SECONDS,
            wait=True,
        )
