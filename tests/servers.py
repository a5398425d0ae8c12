"""Real HTTP servers on 127.0.0.1 for tests: platforms, receivers."""

from __future__ import annotations

import asyncio
import re
import socket
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html import unescape
from typing import Any

import httpx
import uvicorn


def stop_process(process: subprocess.Popen[bytes], grace_seconds: float = 10) -> None:
    """Ask a server process of a test to end; kill it if it has not within the grace."""
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Serve an ASGI app on a free loopback port in this event loop; yields its base URL."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    task = asyncio.create_task(server.serve())
    try:
        for _ in range(200):  # bounded wait for the socket, not a sleep-based assertion
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        if not server.started:
            raise RuntimeError("the test server did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def answer_consent(
    browser: httpx.AsyncClient, authorize_url: str, action: str, form: dict[str, str]
) -> str:
    """Open a network's consent page as a browser would, send its form (to `action`) with
    its hidden fields and `form`, and return where the network sends the browser next
    (the callback, with its query)."""
    page = await browser.get(authorize_url)
    assert page.status_code == 200, page.text
    fields = {
        unescape(name): unescape(value)
        for name, value in re.findall(
            r'<input type="hidden" name="([^"]*)" value="([^"]*)">', page.text
        )
    }
    answer = await browser.post(action, data={**fields, **form})
    assert answer.status_code == 302, answer.text
    return str(answer.headers["location"])
