"""The ASGI application built from the environment, for `crier serve --workers N`.

Each uvicorn worker process calls `create()` and opens its own connection pool. The
database is given by `DATABASE_URL` (and `CRIER_APP_DATABASE_URL`), which `crier serve`
sets for its workers when it runs the embedded server itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from crier.app import freeze_startup_objects
from crier.config import Settings
from crier.runtime import Runtime


def create() -> FastAPI:
    """Build the API from `Settings`; the database is verified when the worker starts."""
    settings = Settings()
    if not settings.database_url:
        raise RuntimeError("crier.asgi needs DATABASE_URL (crier serve sets it for workers)")
    runtime = Runtime.build(settings)
    app = runtime.api()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await runtime.db.verify_app_role()
        freeze_startup_objects()
        yield
        await runtime.close()

    app.router.lifespan_context = lifespan
    return app
