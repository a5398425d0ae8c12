"""The migrations produce exactly the schema the models describe, and run both ways."""

from __future__ import annotations

import secrets
import uuid
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
from tests.migrations.test_tenancy import INSERTS


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


def test_upgrading_closes_the_pending_deliveries_of_cancelled_posts(scratch: DatabaseUrls) -> None:
    """0010 runs across every workspace although the tables' policies bind their owner."""
    migrations.upgrade(scratch.owner, "0009")
    ws, user, member, account = (uuid.uuid4() for _ in range(4))
    email = f"probe-{secrets.token_hex(4)}@example.com"
    deliveries: dict[str, uuid.UUID] = {}
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(ws)])
        conn.execute("SELECT set_config('app.user_email', %s, true)", [email])
        conn.execute(
            "INSERT INTO workspaces (id, slug, name) VALUES (%s, %s, 'W')",
            [ws, f"probe-{secrets.token_hex(4)}"],
        )
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", [user, email])
        params = {"ws": ws, "user": user, "member": member, "account": account}
        conn.execute(INSERTS["members"], {**params, "id": member})
        conn.execute(INSERTS["social_accounts"], {**params, "id": account})
        for status in ("cancelled", "queued"):
            post, target, delivery = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            conn.execute(INSERTS["posts"], {**params, "id": post})
            conn.execute(
                "UPDATE posts SET status = %s, publish_at = now() + interval '1 day' WHERE id = %s",
                [status, post],
            )
            conn.execute(INSERTS["post_targets"], {**params, "id": target, "post": post})
            conn.execute(
                INSERTS["deliveries"], {**params, "id": delivery, "post": post, "target": target}
            )
            deliveries[status] = delivery
    migrations.upgrade(scratch.owner)
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(ws)])
        found: dict[object, object] = dict(
            conn.execute("SELECT id, status FROM deliveries").fetchall()
        )
        forced = conn.execute(
            "SELECT bool_and(relforcerowsecurity) FROM pg_class "
            "WHERE relname IN ('posts', 'deliveries')"
        ).fetchone()
    assert found == {deliveries["cancelled"]: "cancelled", deliveries["queued"]: "pending"}
    assert forced == (True,)  # the policies bind the owner again
