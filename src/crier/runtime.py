"""The composition root: the one place Crier's runtime is put together.

`Runtime.build` turns settings into the parts every process shares (the database, the
vault, the platforms, the clock, media storage, the outbound guard), and the runtime
then builds what a process runs: the API (`crier serve`, `crier run`, `crier.asgi`), the
scheduler worker and the webhook dispatcher (`crier worker`, `crier run`). Tests build
theirs here too, handing in the parts they make themselves (a test database, a fake clock).
Nothing else assembles these parts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from crier.analytics import schedule as metric_schedule
from crier.config import Settings
from crier.kit.db import Database, DatabaseUrls
from crier.kit.db.engine import SCHEDULER_ROLE
from crier.kit.db.server import external_urls
from crier.kit.outbound import Guard
from crier.kit.storage import LocalStorage, Storage
from crier.kit.time import Clock, SystemClock
from crier.kit.vault import Vault
from crier.platforms.installed import installed
from crier.platforms.registry import TIMEOUT, Platforms

if TYPE_CHECKING:
    from fastapi import FastAPI

    from crier.scheduler.worker import Worker
    from crier.webhook.dispatcher import Dispatcher


@dataclass
class Runtime:
    """What one Crier process runs on. Close it to release its connections."""

    settings: Settings
    db: Database
    vault: Vault
    platforms: Platforms
    clock: Clock
    storage: Storage
    guard: Guard
    owns_db: bool = field(default=True, repr=False)
    """Whether `close` disposes of the database (not when it was handed in)."""

    @classmethod
    def build(
        cls,
        settings: Settings,
        urls: DatabaseUrls | None = None,
        *,
        db: Database | None = None,
        clock: Clock | None = None,
        vault: Vault | None = None,
        storage: Storage | None = None,
        guard: Guard | None = None,
        platform_timeout: httpx.Timeout = TIMEOUT,
    ) -> Runtime:
        """The runtime `settings` describe, on the database at `urls` (or `db`, already
        open); any part given is used as it is."""
        owns_db = db is None
        if db is None:
            if urls is None:
                urls = external_urls(settings)
            db = Database(urls, pool_size=settings.db_pool_size)
        clock = clock or SystemClock()
        data = settings.resolved_data_dir
        storage = storage or LocalStorage(data / "media")
        guard = guard or Guard(allow_loopback=settings.allow_loopback)
        return cls(
            settings=settings,
            db=db,
            vault=vault or Vault.from_settings(settings.secret_key, data),
            platforms=installed(settings, clock, guard, storage, platform_timeout),
            clock=clock,
            storage=storage,
            guard=guard,
            owns_db=owns_db,
        )

    @property
    def spool_dir(self) -> Path:
        """Where uploads wait while they are checked."""
        return self.settings.resolved_data_dir / "tmp"

    def api(self) -> FastAPI:
        """The HTTP API on this runtime."""
        from crier.app import create_app

        return create_app(
            self.db,
            self.vault,
            self.storage,
            self.spool_dir,
            self.platforms,
            self.clock,
            webhook_guard=self.guard,
            base_url=self.settings.base_url,
            redirect_origins=self.settings.redirect_origins,
            analytics_answers=int(self.settings.analytics_cache_mb * 1024 * 1024),
        )

    def scheduler_db(self, pool_size: int = 2) -> Database:
        """A database as the scheduler role, over the same server (close it after use)."""
        return Database(self.db.urls, pool_size=pool_size, role=SCHEDULER_ROLE)

    def worker(self, scheduler_db: Database, **overrides: Any) -> Worker:
        """A scheduler worker with the settings' lease, poll and retention."""
        from crier.scheduler.worker import Worker

        options: dict[str, Any] = {
            "lease": timedelta(seconds=self.settings.worker_lease_seconds),
            "heartbeat": timedelta(seconds=self.settings.worker_heartbeat_seconds),
            "silence": timedelta(seconds=self.settings.worker_silence_seconds),
            "poll": timedelta(seconds=self.settings.worker_poll_seconds),
            "webhook_retention": timedelta(days=self.settings.webhook_retention_days),
            "refresh_every": (
                timedelta(seconds=self.settings.worker_refresh_seconds)
                if self.settings.worker_refresh_seconds
                else None
            ),
            "review_poll": (
                timedelta(seconds=self.settings.worker_review_poll_seconds)
                if self.settings.worker_review_poll_seconds
                else None
            ),
            "review_sync_every": timedelta(minutes=self.settings.review_sync_minutes),
            "review_full_scan_every": timedelta(hours=self.settings.review_full_scan_hours),
            "metrics_poll": (
                timedelta(seconds=self.settings.worker_metrics_poll_seconds)
                if self.settings.worker_metrics_poll_seconds
                else None
            ),
            "metrics_schedule": metric_schedule.parse(self.settings.metrics_schedule),
            "export_poll": (
                timedelta(seconds=self.settings.worker_export_poll_seconds)
                if self.settings.worker_export_poll_seconds
                else None
            ),
            "export_keep": timedelta(days=self.settings.analytics_export_days),
            "analytics_today_every": (
                timedelta(minutes=self.settings.analytics_today_minutes)
                if self.settings.analytics_today_minutes
                else None
            ),
        }
        return Worker(
            self.db,
            scheduler_db,
            self.platforms,
            self.vault,
            self.clock,
            self.storage,
            **(options | overrides),
        )

    def dispatcher(self, scheduler_db: Database, **overrides: Any) -> Dispatcher:
        """A webhook dispatcher with the settings' lease and disabling rule."""
        from crier.webhook.dispatcher import Dispatcher

        options: dict[str, Any] = {
            "guard": self.guard,
            "lease": timedelta(seconds=self.settings.worker_lease_seconds),
            "disable_after": timedelta(hours=self.settings.webhook_disable_after_hours),
        }
        return Dispatcher(self.db, scheduler_db, self.vault, self.clock, **(options | overrides))

    async def close(self) -> None:
        """Release the platforms' connections, and the database's pool if it was built here."""
        await self.platforms.close()
        if self.owns_db:
            await self.db.dispose()
