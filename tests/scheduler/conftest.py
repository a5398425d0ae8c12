"""A scheduler for tests: the scheduler role's database and a worker on the test clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from crier.kit.db import Database
from crier.kit.storage import LocalStorage
from crier.kit.vault import Vault
from crier.runtime import Runtime
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, build_runtime
from tests.google import Google
from tests.linkedin import LinkedIn
from tests.x import X


@pytest.fixture
def platform_timeout() -> float:
    """How long the worker waits on the platform; modules that test hangs shorten it."""
    return 2.0


@pytest.fixture
async def runtime(
    db: Database,
    vault: Vault,
    storage: LocalStorage,
    clock: FakeClock,
    sandbox_url: str,
    platform_timeout: float,
    x_server: X,
    linkedin_server: LinkedIn,
    google_server: Google,
    tmp_path: Path,
) -> AsyncIterator[Runtime]:
    """A worker's runtime on the test database and clock, publishing to the sandbox."""
    built = build_runtime(
        db,
        vault,
        storage,
        clock,
        sandbox_url,
        tmp_path,
        httpx.Timeout(platform_timeout),
        x=x_server,
        linkedin=linkedin_server,
        google=google_server,
    )
    yield built
    await built.close()


@pytest.fixture
def worker(runtime: Runtime, scheduler_db: Database) -> Worker:
    return runtime.worker(scheduler_db, worker_id="test-worker", batch=1000)


@pytest.fixture
async def control(sandbox_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The sandbox's control API; its faults are cleared after the test."""
    async with httpx.AsyncClient(base_url=sandbox_url) as client:
        yield client
        await client.delete("/control/faults")
