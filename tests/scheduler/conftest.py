"""A scheduler for tests: the scheduler role's database and a worker on the test clock."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from crier.kit.db import Database
from crier.kit.vault import Vault
from crier.platforms.registry import Platforms
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock


@pytest.fixture
def platform_timeout() -> float:
    """How long the worker waits on the platform; modules that test hangs shorten it."""
    return 2.0


@pytest.fixture
async def worker(
    db: Database,
    scheduler_db: Database,
    vault: Vault,
    clock: FakeClock,
    sandbox_url: str,
    platform_timeout: float,
) -> AsyncIterator[Worker]:
    platforms = Platforms(sandbox_url, clock, timeout=httpx.Timeout(platform_timeout))
    yield Worker(db, scheduler_db, platforms, vault, clock, worker_id="test-worker", batch=1000)
    await platforms.close()
