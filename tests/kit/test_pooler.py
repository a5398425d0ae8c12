"""Through PgBouncer in transaction pooling mode: Crier's connections keep no session state
there, refuse a login that is not its role, and LISTEN on the direct connection."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from crier.config import Settings
from crier.kit.db import Database, DatabaseUrls
from crier.kit.db.engine import APP_ROLE, SCHEDULER_ROLE, UnsafeApplicationRole
from crier.kit.db.notify import listen
from tests.conftest import Server, connect_as
from tests.pgbouncer import through_pgbouncer


@pytest.fixture(scope="module")
def bouncer(pg_server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DatabaseUrls]:
    """The test database's URLs with both roles' logins through a PgBouncer of two server
    connections, so that consecutive transactions of one client meet different sessions."""
    urls = pg_server.urls
    if urls.pooled:  # the session already runs through PgBouncer
        yield urls
        return
    with through_pgbouncer(urls, tmp_path_factory.mktemp("bouncer"), pool_size=2) as through:
        yield through


@pytest.fixture
async def pooled(bouncer: DatabaseUrls) -> AsyncIterator[Database]:
    db = Database(bouncer, pool_size=3)
    yield db
    await db.dispose()


async def test_the_role_is_the_login_and_nothing_is_prepared_by_name(pooled: Database) -> None:
    await pooled.verify_app_role()
    query = text("SELECT current_user AS who, pg_backend_pid() AS pid, :n AS n")

    async def repeatedly(client: int) -> tuple[set[str], set[int]]:
        who: set[str] = set()
        sessions: set[int] = set()
        for n in range(12):  # past psycopg's 5 executions before it prepares by name
            async with pooled.transaction() as session:
                row = (await session.execute(query, {"n": n})).one()
            [rows] = await pooled.read_at_once((query, {"n": n + client}))
            who |= {row.who, rows[0]["who"]}
            sessions |= {row.pid, rows[0]["pid"]}
        return who, sessions

    results = await asyncio.gather(*(repeatedly(client) for client in range(3)))
    assert {name for who, _ in results for name in who} == {APP_ROLE}
    # Three clients over two server sessions: a name prepared in one would be missing in the
    # other, and the statements above would fail with "prepared statement does not exist".
    assert len({pid for _, sessions in results for pid in sessions}) >= 2


async def test_a_start_up_option_is_what_pgbouncer_refuses(bouncer: DatabaseUrls) -> None:
    unpooled = Database(replace(bouncer, pooled=False), pool_size=1)
    try:
        with pytest.raises(Exception, match="unsupported startup parameter: options"):
            await unpooled.verify_app_role()
    finally:
        await unpooled.dispose()


async def test_a_pooled_login_that_is_not_the_role_is_refused_with_the_fix(
    bouncer: DatabaseUrls,
) -> None:
    scheduler_as_app = Database(
        replace(bouncer, scheduler=bouncer.app), pool_size=1, role=SCHEDULER_ROLE
    )
    try:
        with pytest.raises(UnsafeApplicationRole, match="the login must be the role itself"):
            await scheduler_as_app.verify_app_role()
    finally:
        await scheduler_as_app.dispose()


async def test_listen_goes_to_the_direct_connection_and_hears_pooled_notifies(
    pooled: Database, bouncer: DatabaseUrls
) -> None:
    wake, stop, listening = asyncio.Event(), asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(listen(pooled, "crier_pooler_test", wake, stop, listening))
    try:
        await asyncio.wait_for(listening.wait(), 10)
        async with pooled.transaction() as session:
            await session.execute(text("NOTIFY crier_pooler_test"))
        await asyncio.wait_for(wake.wait(), 10)
        async with await pooled.listening_connection() as conn:
            [[port]] = await (await conn.execute("SELECT inet_server_port()")).fetchall()
        assert bouncer.app.port is not None
        assert port != bouncer.app.port, "LISTEN went through the pooler"
    finally:
        stop.set()
        task.cancel()  # as the worker stops it: the loop waits on its notifies
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_settings_refuse_a_pooler_without_a_direct_connection(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="needs direct_database_url"):
        Settings(data_dir=tmp_path, database_url="postgresql://o@db/crier", transaction_pooler=True)
    with pytest.raises(ValidationError, match="needs DATABASE_URL"):
        Settings(data_dir=tmp_path, transaction_pooler=True, direct_database_url="postgresql://d")
    with pytest.raises(ValueError, match="LISTEN needs a direct connection"):
        DatabaseUrls.from_strings("postgresql://o@db/crier", pooled=True)
    pooled = Settings(
        data_dir=tmp_path,
        database_url="postgresql://o@db/crier",
        transaction_pooler=True,
        direct_database_url="postgresql://d@db/crier",
    )
    assert pooled.direct_database_url == "postgresql://d@db/crier"


def test_psycopg_connections_of_tests_act_as_crier_does(bouncer: DatabaseUrls) -> None:
    with connect_as(bouncer, SCHEDULER_ROLE) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (SCHEDULER_ROLE,)
    with pytest.raises(psycopg.OperationalError, match="unsupported startup parameter"):
        psycopg.connect(
            bouncer.app.set(drivername="postgresql").render_as_string(hide_password=False),
            options=f"-c role={APP_ROLE}",
        )
