"""The application engine refuses any connection that could cross the tenant wall."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from crier.kit.db import Database, DatabaseUrls
from crier.kit.db.engine import UnsafeApplicationRole
from tests.conftest import Server, libpq


@pytest.fixture
def stranger(pg_server: Server) -> Iterator[str]:
    """A login that is not a member of crier_app."""
    name = f"stranger_{secrets.token_hex(4)}"
    with psycopg.connect(libpq(pg_server.admin), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        with psycopg.connect(libpq(pg_server.admin), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


async def test_a_login_that_cannot_take_the_app_role_is_refused_with_the_fix(
    db_urls: DatabaseUrls, stranger: str
) -> None:
    urls = DatabaseUrls(owner=db_urls.owner, app=db_urls.app.set(username=stranger, password="pw"))
    db = Database(urls, pool_size=1)
    try:
        with pytest.raises(UnsafeApplicationRole, match=f"GRANT crier_app TO {stranger}"):
            await db.verify_app_role()
    finally:
        await db.dispose()


async def test_the_app_engine_acts_as_crier_app(db: Database) -> None:
    await db.verify_app_role()
    async with db.engine.connect() as conn:
        from sqlalchemy import text

        assert (await conn.execute(text("SELECT current_user"))).scalar() == "crier_app"
