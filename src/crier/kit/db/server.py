"""Choosing the database: `DATABASE_URL` when given, the embedded server otherwise."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from crier.config import Settings
from crier.kit.db.embedded import EmbeddedPostgres
from crier.kit.db.engine import DatabaseUrls


def external_urls(settings: Settings) -> DatabaseUrls:
    """The URLs of the database `DATABASE_URL` and the settings beside it name."""
    return DatabaseUrls.from_strings(
        settings.database_url or "",
        settings.app_database_url,
        settings.scheduler_database_url,
        direct=settings.direct_database_url,
        pooled=settings.transaction_pooler,
    )


@contextmanager
def database_server(settings: Settings) -> Iterator[DatabaseUrls]:
    """Yield the URLs of the database to use, holding the embedded server open meanwhile."""
    if settings.database_url:
        yield external_urls(settings)
        return
    embedded = EmbeddedPostgres(settings.resolved_data_dir)
    try:
        yield embedded.start()
    finally:
        embedded.stop()
