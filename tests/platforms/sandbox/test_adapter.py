"""Crier's sandbox adapter against the real sandbox server: results and catalogued errors."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest

from crier.platforms.base import Account, MediaRef, Prepared
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import platform_http
from crier.platforms.sandbox.adapter import SandboxAdapter
from tests.conftest import FakeClock
from tests.platforms.sandbox.conftest import Sandbox
from tests.servers import free_port


@pytest.fixture
async def adapter(sandbox: Sandbox, clock: FakeClock) -> AsyncIterator[SandboxAdapter]:
    async with platform_http(httpx.Timeout(0.3)) as http:  # the workers' client
        yield SandboxAdapter(http, sandbox.url, clock)


POST = Prepared(text="Hello", media=[MediaRef("image", "https://media.invalid/a.jpg")])


async def failure(call: object) -> PlatformError:
    with pytest.raises(PlatformError) as raised:
        await call  # type: ignore[misc]
    return raised.value


async def test_connect_publish_find_and_measure(adapter: SandboxAdapter, clock: FakeClock) -> None:
    tokens = await adapter.connect("crier_demo")
    assert tokens.handle == "crier_demo"
    assert tokens.expires_at == clock.now() + timedelta(seconds=7200)
    published = await adapter.publish(Account(tokens.access_token), POST, "delivery-1")
    assert published.permalink.endswith(published.external_id)
    again = await adapter.publish(Account(tokens.access_token), POST, "delivery-1")
    assert again.external_id == published.external_id
    assert await adapter.find(Account(tokens.access_token), "delivery-1") == published
    assert await adapter.find(Account(tokens.access_token), "never-sent") is None
    clock.advance(timedelta(minutes=30))
    metrics = await adapter.metrics(Account(tokens.access_token), published.external_id)
    assert metrics["impressions"] > metrics["reach"] > metrics["likes"] > 0
    assert set(metrics) == {"impressions", "reach", "likes", "shares", "comments", "clicks"}
    clock.advance(timedelta(hours=1))
    later = await adapter.metrics(Account(tokens.access_token), published.external_id)
    assert all(later[name] >= metrics[name] for name in metrics)
    assert later["impressions"] > metrics["impressions"]


async def test_account_metrics_grow_with_the_account(
    adapter: SandboxAdapter, clock: FakeClock
) -> None:
    tokens = await adapter.connect("grows")
    account = Account(tokens.access_token)
    first = await adapter.account_metrics(account)
    assert set(first) == {"followers", "following", "posts"}
    assert first["posts"] == 0
    assert first["followers"] >= 100
    await adapter.publish(account, POST, "delivery-1")
    clock.advance(timedelta(days=2))
    later = await adapter.account_metrics(
        Account((await adapter.refresh(tokens.refresh_token or "")).access_token)
    )
    assert later["followers"] > first["followers"]
    assert later["posts"] == 1


async def test_refresh_gives_working_tokens(adapter: SandboxAdapter, clock: FakeClock) -> None:
    tokens = await adapter.connect("r")
    clock.advance(timedelta(hours=3))
    expired = await failure(adapter.publish(Account(tokens.access_token), POST, "k"))
    assert (expired.code, expired.retryable) == (ErrorCode.AUTH_EXPIRED, False)
    assert tokens.refresh_token is not None
    fresh = await adapter.refresh(tokens.refresh_token)
    assert (await adapter.publish(Account(fresh.access_token), POST, "k")).external_id
    spent = await failure(adapter.refresh(tokens.refresh_token))
    assert spent.code == ErrorCode.AUTH_REVOKED


@pytest.mark.parametrize(
    ("faults", "code", "retryable", "maybe"),
    [
        ({"fail_next": 1}, ErrorCode.PLATFORM_UNAVAILABLE, True, True),
        ({"rate_limit_next": 1, "retry_after_seconds": 9}, ErrorCode.RATE_LIMITED, True, False),
        ({"hang_next": 1, "hang_seconds": 1}, ErrorCode.TIMEOUT, True, True),
        ({"hang_after_accept_next": 1, "hang_seconds": 1}, ErrorCode.TIMEOUT, True, True),
        ({"reject_next": 1}, ErrorCode.CONTENT_REJECTED, False, False),
    ],
)
async def test_each_fault_becomes_its_catalogued_error(
    adapter: SandboxAdapter,
    sandbox: Sandbox,
    faults: dict[str, object],
    code: ErrorCode,
    retryable: bool,
    maybe: bool,
) -> None:
    tokens = await adapter.connect("f")
    await sandbox.faults(**faults)
    error = await failure(adapter.publish(Account(tokens.access_token), POST, "key"))
    assert (error.code, error.retryable, error.may_have_succeeded) == (code, retryable, maybe)
    if code == ErrorCode.RATE_LIMITED:
        assert error.retry_after == 9


async def test_an_accepted_but_unanswered_post_is_found_not_resent(
    adapter: SandboxAdapter, sandbox: Sandbox
) -> None:
    tokens = await adapter.connect("u")
    await sandbox.faults(hang_after_accept_next=1, hang_seconds=1)
    error = await failure(adapter.publish(Account(tokens.access_token), POST, "uncertain"))
    assert error.may_have_succeeded
    assert await adapter.find(Account(tokens.access_token), "uncertain") is not None
    received = (await sandbox.http.get("/control/received")).json()
    assert received["count"] == 1


async def test_revoked_access_and_oversized_media_are_permanent(
    adapter: SandboxAdapter, sandbox: Sandbox
) -> None:
    tokens = await adapter.connect("v")
    many = Prepared(text="x", media=[MediaRef("image", "https://media.invalid/a.jpg")] * 5)
    assert (await failure(adapter.publish(Account(tokens.access_token), many, "m"))).code == (
        ErrorCode.MEDIA_REJECTED
    )
    await sandbox.http.post(f"/control/accounts/{tokens.external_id}/revoke")
    revoked = await failure(adapter.publish(Account(tokens.access_token), POST, "r"))
    assert (revoked.code, revoked.retryable) == (ErrorCode.AUTH_REVOKED, False)


async def test_an_unreachable_platform_is_unavailable_and_was_not_sent(clock: FakeClock) -> None:
    async with platform_http(httpx.Timeout(1)) as http:
        adapter = SandboxAdapter(http, f"http://127.0.0.1:{free_port()}", clock)
        error = await failure(adapter.publish(Account("token"), POST, "k"))
    assert (error.code, error.retryable, error.may_have_succeeded) == (
        ErrorCode.PLATFORM_UNAVAILABLE,
        True,
        False,
    )


async def test_a_connection_lost_mid_call_may_have_published(clock: FakeClock) -> None:
    """The platform read the whole request, then the connection dropped: the post may exist,
    so the worker must look it up before sending again."""
    read = asyncio.Event()

    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        read.set()
        writer.close()

    server = await asyncio.start_server(drop, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with platform_http(httpx.Timeout(5)) as http:
            adapter = SandboxAdapter(http, f"http://127.0.0.1:{port}", clock)
            error = await failure(adapter.publish(Account("token"), POST, "k"))
    finally:
        server.close()
        await server.wait_closed()
    assert read.is_set()
    assert (error.code, error.retryable, error.may_have_succeeded) == (
        ErrorCode.PLATFORM_UNAVAILABLE,
        True,
        True,
    )


async def test_calls_beyond_the_connections_wait_their_turn_without_timing_out() -> None:
    """One connection, a pool timeout of 50 ms, and the platform holding the first call
    longer than that: the second waits its turn and goes through, rather than failing."""
    arrived, release = asyncio.Event(), asyncio.Event()
    served = 0

    async def hold(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal served
        while True:
            try:
                await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, ConnectionError):
                break
            served += 1
            arrived.set()
            await release.wait()
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(hold, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
    try:
        async with platform_http(httpx.Timeout(5, pool=0.05), calls=1) as http:
            calls = [asyncio.create_task(http.get(url)) for _ in range(2)]
            await asyncio.wait_for(arrived.wait(), timeout=5)
            await asyncio.sleep(0.2)  # the second call has now waited past the pool timeout
            release.set()
            answers = await asyncio.gather(*calls)
    finally:
        server.close()
        await server.wait_closed()
    assert [a.status_code for a in answers] == [200, 200]
    assert served == 2
