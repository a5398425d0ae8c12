"""The application engine: it refuses any connection that could cross the tenant wall, and
runs the hottest reads in one round trip."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from uuid import UUID

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

from crier.auth.keys import hash_key
from crier.auth.repository import authenticate_statement
from crier.kit.db import Database, DatabaseUrls
from crier.kit.db.engine import UnsafeApplicationRole
from tests.conftest import FakeClock, Server, Tenant, libpq


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
        assert (await conn.execute(text("SELECT current_user"))).scalar() == "crier_app"


async def test_statements_read_at_once_share_one_transaction(db: Database) -> None:
    setting = text("SELECT set_config('crier.test', :value, true) AS set")
    seen = text("SELECT current_setting('crier.test', true) AS seen")
    _, inside = await db.read_at_once((setting, {"value": "one"}), (seen, {}))
    assert inside == [{"seen": "one"}]
    [after] = await db.read_at_once((seen, {}))
    assert after in ([{"seen": None}], [{"seen": ""}])  # transaction-local: gone


async def test_a_failing_statement_read_at_once_undoes_the_others(
    db: Database, tenant: Tenant, clock: FakeClock
) -> None:
    key = (await tenant.post("/v1/api-keys", json={"name": "k"})).json()
    use = authenticate_statement(hash_key(key["key"]), clock.now())
    with pytest.raises(psycopg.errors.DivisionByZero):
        await db.read_at_once(use, (text("SELECT 1 / 0"), {}))
    assert (await tenant.get(f"/v1/api-keys/{key['id']}")).json()["last_used_at"] is None
    [found, _] = await db.read_at_once(use, (text("SELECT 1"), {}))  # the pool is still sound
    assert found[0]["api_key_id"] == UUID(key["id"])
    assert (await tenant.get(f"/v1/api-keys/{key['id']}")).json()["last_used_at"] is not None


async def test_a_pipelined_statement_larger_than_the_socket_buffer_is_answered(
    db: Database,
) -> None:
    """A statement the socket takes in several writes is sent whole before the transaction
    waits for answers; otherwise the server waits for its end and the connection for good."""
    echo = text("SELECT length(CAST(:big AS text)) AS n")
    for size in (2_100_000, 8_000_000, 16_000_000):
        async with asyncio.timeout(20):
            [[row]] = await db.read_at_once((echo, {"big": "x" * size}))
        assert row == {"n": size}
    async with asyncio.timeout(5):  # and the pool's connections are sound afterwards
        [[row]] = await db.read_at_once((text("SELECT 1 AS one"), {}))
    assert row == {"one": 1}
