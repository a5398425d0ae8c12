"""The reference Bluesky server for tests: `@atproto/pds` with a PLC directory of its own,
run by Node on 127.0.0.1 from what `make pds` installed into `.cache/pds`."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.requests import Request
from starlette.responses import Response

from tests.servers import free_port, stop_process

ROOT = Path(__file__).resolve().parent.parent
INSTALLED = ROOT / ".cache" / "pds"
SCRIPT = ROOT / "tests" / "pds" / "run.js"
START_SECONDS = 90.0  # Node loads the server's modules and opens its databases


@dataclass
class ReferencePds:
    url: str

    def call(self, method: str, token: str | None = None, **body: Any) -> dict[str, Any]:
        """A procedure of the server (POST /xrpc/<method>), which must succeed."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        answer = httpx.post(f"{self.url}/xrpc/{method}", json=body, headers=headers)
        assert answer.status_code == 200, (method, answer.status_code, answer.text)
        result: dict[str, Any] = answer.json()
        return result

    def get(self, method: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}/xrpc/{method}", params=params)

    def account(self, handle: str) -> tuple[str, str, str]:
        """A new account: its DID, its own password and an app password made for Crier."""
        password = f"{handle}-own-password"
        made = self.call(
            "com.atproto.server.createAccount",
            handle=handle,
            email=f"{handle}@example.com",
            password=password,
        )
        app = self.call(
            "com.atproto.server.createAppPassword", token=made["accessJwt"], name="Crier"
        )
        return made["did"], password, app["password"]

    def records(self, did: str) -> list[dict[str, Any]]:
        """The account's posts in its repository."""
        listed = self.get("com.atproto.repo.listRecords", repo=did, collection="app.bsky.feed.post")
        assert listed.status_code == 200, listed.text
        found: list[dict[str, Any]] = listed.json()["records"]
        return found


@contextmanager
def reference_pds(data_dir: Path) -> Iterator[ReferencePds]:
    if not (INSTALLED / "node_modules" / "@atproto" / "pds").is_dir():
        raise RuntimeError(f"the reference PDS is not installed in {INSTALLED}: run `make pds`")
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("the reference PDS needs Node.js 20 or newer on PATH")
    port, plc_port = free_port(), free_port()
    log = (data_dir / "pds.log").open("wb")
    env = {**os.environ, "NODE_PATH": str(INSTALLED / "node_modules"), "LOG_ENABLED": "false"}
    process = subprocess.Popen(  # noqa: S603 - Node, with this repository's script
        [node, str(SCRIPT), str(data_dir / "pds"), str(port), str(plc_port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_healthy(process, url, data_dir / "pds.log")
        yield ReferencePds(url)
    finally:
        stop_process(process)
        log.close()


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the reference PDS exited: {log.read_text()[-4000:]}")
        try:
            if httpx.get(f"{url}/xrpc/_health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)  # waiting for a process to listen, not timing a test
    raise RuntimeError(f"the reference PDS did not answer in {START_SECONDS:.0f}s: {log}")


@dataclass
class LosingProxy:
    """Passes calls on to the server; the answers to the first `lose` posts it passes are
    held for `hold_seconds` once the server has stored them, past the worker's timeout, as
    when a worker dies after the server stored the post or its answer is lost."""

    target: str
    lose: int = 1
    hold_seconds: float = 4

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive)
        async with httpx.AsyncClient(base_url=self.target, timeout=30) as client:
            answer = await client.request(
                request.method,
                request.url.path,
                params=request.query_params,
                content=await request.body(),
                headers={k: v for k, v in request.headers.items() if k != "host"},
            )
        posting = request.url.path.endswith(
            ("com.atproto.repo.createRecord", "com.atproto.repo.applyWrites")
        )
        if posting and self.lose > 0:
            self.lose -= 1
            await asyncio.sleep(self.hold_seconds)
        headers = {
            k: v
            for k, v in answer.headers.items()
            if k not in ("content-length", "content-encoding", "transfer-encoding")
        }
        await Response(answer.content, answer.status_code, headers)(scope, receive, send)
