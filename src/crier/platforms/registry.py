"""The adapters of the platforms this server can publish to, sharing one HTTP client."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport

from crier.kit.errors import CrierError
from crier.kit.outbound import Guard, GuardedResolver
from crier.platforms.base import (
    Adapter,
    ConnectsDirectly,
    ConnectsWithOAuth,
    ConnectsWithPassword,
    HasReviews,
    PicksAccounts,
)
from crier.platforms.errors import ErrorCode, PlatformError

# Connect fast, and do not let a slow platform hold a request or a worker for long.
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
CALLS = 512
"""Platform calls in flight at once per process (workers send hundreds of posts at once),
each on its own kept-alive connection."""


class _Transport(AiohttpTransport):
    """httpx on aiohttp's connection pool, which stays cheap with hundreds of calls in
    flight (httpcore's scans every connection on every call, and took half a worker's CPU).
    Failures keep the meaning httpx gives them, on which "was it sent?" depends: refused
    or unresolved is `ConnectError` and no connection in time `ConnectTimeout` (nothing was
    sent); no answer in time is `ReadTimeout`, and a connection lost mid-call `ReadError`
    (something may have been)."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            return await super().handle_async_request(request)
        except httpx.TransportError as mapped:
            cause = mapped.__cause__
            kind: type[httpx.TransportError] = type(mapped)
            if isinstance(cause, aiohttp.ConnectionTimeoutError):
                kind = httpx.ConnectTimeout
            elif isinstance(cause, aiohttp.ServerTimeoutError):
                kind = httpx.ReadTimeout
            elif isinstance(cause, aiohttp.ClientConnectorError):
                kind = httpx.ConnectError
            elif isinstance(cause, aiohttp.ClientConnectionError):
                kind = httpx.ReadError
            raise kind(str(cause or mapped), request=request) from cause


class _Client(httpx.AsyncClient):
    """At most `calls` requests at once, as many as there are connections: the others wait
    their turn here, cheaply and without a time limit (each call in flight has its own), not
    in aiohttp's pool, where each waiter arms a timeout on the event loop (a tenth of a
    worker's CPU in a spike of 10,000 posts) and fails when it passes."""

    def __init__(self, calls: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._calls = asyncio.Semaphore(calls)

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        # Without `stream=True` (never used for platforms), the body is read and the
        # connection back in the pool before this returns.
        async with self._calls:
            return await super().send(request, **kwargs)


def platform_http(
    timeout: httpx.Timeout = TIMEOUT, calls: int = CALLS, guard: Guard | None = None
) -> httpx.AsyncClient:
    """The HTTP client platform adapters share: `calls` in flight at once, at most. With a
    `guard`, names resolve only to addresses it allows (for servers users name, such as
    Mastodon instances), and the connection goes to the very address checked."""

    def session() -> aiohttp.ClientSession:
        assert guard is not None
        return aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=calls, resolver=GuardedResolver(guard))
        )

    transport = _Transport(
        limits=httpx.Limits(max_connections=calls), client=session if guard else None
    )
    return _Client(calls, timeout=timeout, follow_redirects=False, transport=transport)


class PlatformUnavailable(CrierError):
    """The social platform could not be reached or failed. Nothing was changed; try again
    later. `platform_error` is the delivery error code (see docs/errors.md)."""

    slug = "platform-unavailable"
    title = "Platform unavailable"
    status = 503

    @classmethod
    def from_error(cls, platform: str, error: PlatformError) -> PlatformUnavailable:
        return cls(
            f"{platform} answered: {error.message}",
            platform=platform,
            platform_error=error.code.value,
        )


class Platforms:
    """The registry of adapters, one per platform name, sharing one HTTP client: the one
    way the scheduler, token refreshes and account connections reach a platform. Which
    adapters a server has is decided where it is built (`crier.platforms.installed`).
    Close it to release its connections."""

    def __init__(
        self,
        http: httpx.AsyncClient | None = None,
        media_base_url: str = "http://127.0.0.1:8000",
        guarded_http: httpx.AsyncClient | None = None,
    ) -> None:
        self.http = http or platform_http()
        self.guarded_http = guarded_http or self.http
        """For servers users name (Mastodon instances): the outbound guard's resolver."""
        self.media_base_url = media_base_url.rstrip("/")
        """Where platforms are told to fetch media (this API's public address)."""
        self._adapters: dict[str, Adapter] = {}

    def register(self, adapter: Adapter) -> None:
        """Publish to `adapter.platform` through `adapter` (one adapter per platform)."""
        if adapter.platform in self._adapters:
            raise ValueError(f"an adapter for {adapter.platform} is already registered")
        self._adapters[adapter.platform] = adapter

    def unregister(self, platform: str) -> None:
        """Stop publishing to `platform` here (deliveries to it then fail with
        `platform_not_configured`)."""
        self._adapters.pop(platform, None)

    def adapter(self, platform: str) -> Adapter:
        """The adapter of `platform`; a permanent `platform_not_configured` failure when
        this server has none."""
        try:
            return self._adapters[platform]
        except KeyError:
            raise PlatformError(
                ErrorCode.PLATFORM_NOT_CONFIGURED,
                f"this server is not configured to publish to {platform}",
            ) from None

    def __contains__(self, platform: object) -> bool:
        return platform in self._adapters

    @property
    def names(self) -> list[str]:
        """The platforms this server can reach, in registration order."""
        return list(self._adapters)

    def connects(self, platform: str) -> str | None:
        """How accounts of `platform` connect here: `direct` (no consent screen),
        `app_password` (a password made for apps, on a server the user may name), `oauth`
        (the network's consent screen), `oauth_instance` (the same, on a server the user
        names), `oauth_choose` (the same, then a choice of the accounts the consent
        reaches), or None when this server cannot connect them."""
        adapter = self._adapters.get(platform)
        if isinstance(adapter, ConnectsDirectly):
            return "direct"
        if isinstance(adapter, ConnectsWithPassword):
            return "app_password"
        if isinstance(adapter, ConnectsWithOAuth) and adapter.configured():
            if isinstance(adapter, PicksAccounts):
                return "oauth_choose"
            return "oauth_instance" if adapter.registers_apps else "oauth"
        return None

    def has_reviews(self, platform: str) -> bool:
        """Whether `platform`'s accounts are locations whose reviews this server syncs."""
        return isinstance(self._adapters.get(platform), HasReviews)

    async def close(self) -> None:
        await self.http.aclose()
        if self.guarded_http is not self.http:
            await self.guarded_http.aclose()
