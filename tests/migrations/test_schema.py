"""The migrations produce exactly the schema the models describe, and run both ways."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, pool

from crier.kit.db import DatabaseUrls
from crier.kit.db import migrate as migrations
from crier.models import Base
from tests.conftest import Server, create_database, drop_database, libpq


def schema_differences(urls: DatabaseUrls) -> list[object]:
    engine = create_engine(urls.owner, poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(
                conn, opts={"compare_type": True, "compare_server_default": True}
            )
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def public_tables(urls: DatabaseUrls) -> set[str]:
    with psycopg.connect(libpq(urls.owner)) as conn:
        rows = conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
        ).fetchall()
    return {r[0] for r in rows}


@pytest.fixture
def scratch(pg_server: Server) -> Iterator[DatabaseUrls]:
    """An empty database owned by the schema owner, dropped afterwards."""
    name = f"crier_scratch_{secrets.token_hex(4)}"
    create_database(pg_server.admin, name, owner=pg_server.urls.owner.username)
    try:
        yield pg_server.with_database(name)
    finally:
        drop_database(pg_server.admin, name)


def test_migrated_schema_matches_the_models(db_urls: DatabaseUrls) -> None:
    assert schema_differences(db_urls) == []


def test_downgrade_to_base_then_upgrade_round_trips(scratch: DatabaseUrls) -> None:
    migrations.upgrade(scratch.owner)
    assert {"workspaces", "posts", "analytics_snapshots"} <= public_tables(scratch)

    migrations.downgrade(scratch.owner, "base")
    assert public_tables(scratch) == {"alembic_version"}

    migrations.upgrade(scratch.owner)
    assert schema_differences(scratch) == []
    assert migrations.is_current(scratch.owner)


def test_a_fresh_database_is_not_current_until_migrated(scratch: DatabaseUrls) -> None:
    assert not migrations.is_current(scratch.owner)
    migrations.upgrade(scratch.owner)
    assert migrations.is_current(scratch.owner)
