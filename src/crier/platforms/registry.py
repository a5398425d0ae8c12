"""The adapters of the platforms this server can publish to, sharing one HTTP client."""

from __future__ import annotations

import httpx

from crier.kit.errors import CrierError
from crier.kit.time import Clock
from crier.platforms.errors import PlatformError
from crier.platforms.sandbox.adapter import SandboxAdapter

# Connect fast, and do not let a slow platform hold a request or a worker for long.
TIMEOUT = httpx.Timeout(10.0, connect=3.0)


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
    """Every adapter, by platform name. Close it to release its connections."""

    def __init__(
        self,
        sandbox_url: str,
        clock: Clock | None = None,
        timeout: httpx.Timeout = TIMEOUT,
        media_base_url: str = "http://127.0.0.1:8000",
    ) -> None:
        # Workers send hundreds of posts at once: room for them, kept alive between posts.
        self.http = httpx.AsyncClient(
            timeout=timeout,
            follow_redirects=False,
            limits=httpx.Limits(max_connections=512, max_keepalive_connections=128),
        )
        self.media_base_url = media_base_url.rstrip("/")
        """Where platforms are told to fetch media (this API's public address)."""

        self.sandbox = SandboxAdapter(self.http, sandbox_url, clock)

    async def close(self) -> None:
        await self.http.aclose()
