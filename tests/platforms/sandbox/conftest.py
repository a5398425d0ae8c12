"""A sandbox platform server for each test, on a real loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from crier.platforms.sandbox.server import create_sandbox_app
from crier.platforms.sandbox.store import Store
from tests.conftest import FakeClock
from tests.servers import serving


@dataclass
class Sandbox:
    url: str
    http: httpx.AsyncClient

    async def connect(self, handle: str = "tester") -> dict[str, Any]:
        response = await self.http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "handle": handle}
        )
        assert response.status_code == 200, response.text
        tokens: dict[str, Any] = response.json()
        return tokens

    async def faults(self, **faults: Any) -> None:
        response = await self.http.put("/control/faults", json=faults)
        assert response.status_code == 200, response.text

    @staticmethod
    def bearer(tokens: dict[str, Any]) -> dict[str, str]:
        return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
async def sandbox(clock: FakeClock) -> AsyncIterator[Sandbox]:
    store = Store(None)
    async with (
        serving(create_sandbox_app(store, clock, seed=7)) as url,
        httpx.AsyncClient(base_url=url, timeout=5) as client,
    ):
        yield Sandbox(url, client)

    store.close()
