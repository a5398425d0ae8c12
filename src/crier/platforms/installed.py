"""The platforms this server publishes to: the one place their adapters are registered.

Each adapter is built from settings (its base URL, and for the networks that need them, the
app's credentials) and registered under its platform's name; everything else finds it
through the registry by the account's platform.
"""

from __future__ import annotations

import httpx

from crier.config import Settings
from crier.kit.time import Clock
from crier.platforms.registry import TIMEOUT, Platforms, platform_http
from crier.platforms.sandbox.adapter import SandboxAdapter


def installed(settings: Settings, clock: Clock, timeout: httpx.Timeout = TIMEOUT) -> Platforms:
    """Every platform this server is built for, sharing one HTTP client."""
    platforms = Platforms(platform_http(timeout), media_base_url=settings.base_url)
    platforms.register(SandboxAdapter(platforms.http, settings.resolved_sandbox_url, clock))
    return platforms
