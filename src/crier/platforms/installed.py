"""The platforms this server publishes to: the one place their adapters are registered.

Each adapter is built from settings (its base URL, and for the networks that need them, the
app's credentials) and registered under its platform's name; everything else finds it
through the registry by the account's platform.
"""

from __future__ import annotations

import httpx

from crier.config import Settings
from crier.kit.outbound import Guard
from crier.kit.storage import Storage
from crier.kit.time import Clock
from crier.platforms.bluesky.adapter import BlueskyAdapter
from crier.platforms.google_business.adapter import GoogleBusinessAdapter
from crier.platforms.linkedin.adapter import LinkedInAdapter
from crier.platforms.mastodon.adapter import MastodonAdapter
from crier.platforms.registry import TIMEOUT, Platforms, platform_http
from crier.platforms.sandbox.adapter import SandboxAdapter
from crier.platforms.x.adapter import XAdapter


def installed(
    settings: Settings,
    clock: Clock,
    guard: Guard,
    storage: Storage,
    timeout: httpx.Timeout = TIMEOUT,
) -> Platforms:
    """Every platform this server is built for. They share one HTTP client, but for the
    networks whose servers users name (Mastodon, Bluesky), which share one behind `guard`."""
    platforms = Platforms(
        platform_http(timeout),
        media_base_url=settings.base_url,
        guarded_http=platform_http(timeout, guard=guard),
    )
    platforms.register(SandboxAdapter(platforms.http, settings.resolved_sandbox_url, clock))
    platforms.register(
        MastodonAdapter(
            platforms.guarded_http,
            guard,
            storage,
            client_name=settings.mastodon_client_name,
            website=settings.mastodon_website,
            clock=clock,
            poll_interval=settings.mastodon_media_poll_seconds,
            instances=settings.allowed_mastodon_instances,
        )
    )
    platforms.register(
        BlueskyAdapter(
            platforms.guarded_http,
            guard,
            storage,
            service_url=settings.bluesky_service_url,
            web_url=settings.bluesky_web_url,
            services=settings.allowed_bluesky_services,
            clock=clock,
        )
    )
    if settings.x_client_id:  # X through this server's app, when it has one
        platforms.register(
            XAdapter(
                platforms.http,
                storage,
                client_id=settings.x_client_id,
                client_secret=settings.x_client_secret,
                api_url=settings.x_api_url,
                authorize_url=settings.x_authorize_url,
                web_url=settings.x_web_url,
                clock=clock,
                poll_cap=settings.x_media_poll_seconds,
            )
        )
    if settings.linkedin_client_id and settings.linkedin_client_secret:
        platforms.register(
            LinkedInAdapter(
                platforms.http,
                storage,
                client_id=settings.linkedin_client_id,
                client_secret=settings.linkedin_client_secret,
                pages_client_id=settings.linkedin_pages_client_id,
                pages_client_secret=settings.linkedin_pages_client_secret,
                api_url=settings.linkedin_api_url,
                oauth_url=settings.linkedin_oauth_url,
                version=settings.linkedin_version,
                web_url=settings.linkedin_web_url,
                clock=clock,
                poll_interval=settings.linkedin_media_poll_seconds,
            )
        )
    if settings.google_client_id and settings.google_client_secret:
        platforms.register(
            GoogleBusinessAdapter(
                platforms.http,
                client_id=settings.google_client_id,
                client_secret=settings.google_client_secret,
                authorize_url=settings.google_authorize_url,
                oauth_url=settings.google_oauth_url,
                accounts_url=settings.google_accounts_url,
                information_url=settings.google_information_url,
                api_url=settings.google_business_url,
                performance_url=settings.google_performance_url,
                clock=clock,
            )
        )
    return platforms
