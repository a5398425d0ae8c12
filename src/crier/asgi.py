"""The ASGI application built from the environment, for `crier serve --workers N`.

Each uvicorn worker process calls `create()` and opens its own connection pool. The
database is given by `DATABASE_URL` (and `CRIER_APP_DATABASE_URL`), which `crier serve`
sets for its workers when it runs the embedded server itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from crier.app import create_app, freeze_startup_objects
from crier.config import Settings
from crier.kit.db import Database, DatabaseUrls
from crier.kit.storage import LocalStorage
from crier.kit.vault import Vault
from crier.platforms.registry import Platforms
from crier.webhook.outbound import Guard


def create() -> FastAPI:
    """Build the API from `Settings`; the database is verified when the worker starts."""
    settings = Settings()
    if not settings.database_url:
        raise RuntimeError("crier.asgi needs DATABASE_URL (crier serve sets it for workers)")
    db = Database(
        DatabaseUrls.from_strings(
            settings.database_url, settings.app_database_url, settings.scheduler_database_url
        ),
        pool_size=settings.db_pool_size,
    )
    data = settings.resolved_data_dir
    platforms = Platforms(settings.resolved_sandbox_url, media_base_url=settings.base_url)
    app = create_app(
        db,
        Vault.from_settings(settings.secret_key, data),
        LocalStorage(data / "media"),
        data / "tmp",
        platforms,
        webhook_guard=Guard(allow_loopback=settings.webhook_allow_loopback),
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await db.verify_app_role()
        freeze_startup_objects()
        yield
        await platforms.close()
        await db.dispose()

    app.router.lifespan_context = lifespan
    return app
