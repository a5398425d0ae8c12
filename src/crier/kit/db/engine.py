"""Connections: the owner's (migrations only) and the application's (everything else).

The application always acts as the role `crier_app`: it owns no table, has no BYPASSRLS, and
so every query it runs is filtered by Row Level Security. Whatever login the application
URL names, the connection takes that role at start-up (`-c role=crier_app`), and `Database`
refuses to run if the role it ends up with could bypass the tenant wall.

Through a transaction pooler (PgBouncer with `pool_mode = transaction`, `DatabaseUrls.pooled`)
a connection is a different server session from one transaction to the next, so Crier keeps
no session state on it: the login is the role itself (no start-up option, which PgBouncer
refuses), no statement is prepared by name (psycopg's `prepare_threshold` off), advisory locks
are transaction-scoped, settings transaction-local, and LISTEN, the one thing that needs a
session, goes to `DatabaseUrls.direct`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import psycopg
from psycopg.abc import PQGen
from psycopg.generators import send as send_whole
from psycopg.rows import dict_row
from sqlalchemy import TextClause, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from crier.kit.db.tenancy import enter_workspace

APP_ROLE = "crier_app"
SCHEDULER_ROLE = "crier_scheduler"
"""Claims due posts across workspaces, seeing nothing of them but ids, times and leases."""


log = logging.getLogger(__name__)


def sqlalchemy_url(url: str | URL) -> URL:
    """Normalise any PostgreSQL URL to the psycopg 3 driver SQLAlchemy needs."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {parsed.render_as_string(hide_password=True)}")
    return parsed.set(drivername="postgresql+psycopg")


def _libpq(url: URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


@dataclass(frozen=True)
class DatabaseUrls:
    """Where the schema owner, the application and the scheduler connect."""

    owner: URL
    app: URL
    scheduler: URL | None = None
    """The scheduler's login; the owner's when not given (the owner may take the role)."""
    direct: URL | None = None
    """A connection straight to PostgreSQL, for LISTEN; each role's own URL when not given."""
    pooled: bool = False
    """The application's and the scheduler's URLs pass through a transaction pooler."""

    def __post_init__(self) -> None:
        if self.pooled and self.direct is None:
            raise ValueError(
                "through a transaction pooler, LISTEN needs a direct connection: "
                "name one (CRIER_DIRECT_DATABASE_URL)"
            )

    @classmethod
    def from_strings(
        cls,
        owner: str,
        app: str | None = None,
        scheduler: str | None = None,
        *,
        direct: str | None = None,
        pooled: bool = False,
    ) -> DatabaseUrls:
        owner_url = sqlalchemy_url(owner)
        return cls(
            owner=owner_url,
            app=sqlalchemy_url(app) if app else owner_url,
            scheduler=sqlalchemy_url(scheduler) if scheduler else None,
            direct=sqlalchemy_url(direct) if direct else None,
            pooled=pooled,
        )

    def login_for(self, role: str) -> URL:
        if role == SCHEDULER_ROLE:
            return self.scheduler or self.owner
        return self.app

    def environment(self) -> dict[str, str]:
        """These URLs as the variables `Settings` reads: for the processes Crier starts."""
        variables = {
            "DATABASE_URL": self.owner.render_as_string(hide_password=False),
            "CRIER_APP_DATABASE_URL": self.app.render_as_string(hide_password=False),
            "CRIER_TRANSACTION_POOLER": "true" if self.pooled else "false",
        }
        if self.scheduler is not None:
            variables["CRIER_SCHEDULER_DATABASE_URL"] = self.scheduler.render_as_string(
                hide_password=False
            )
        if self.direct is not None:
            variables["CRIER_DIRECT_DATABASE_URL"] = self.direct.render_as_string(
                hide_password=False
            )
        return variables


_COMMIT_HOOKS = "crier.after_commit"
_ROLLBACK_HOOKS = "crier.after_rollback"


def after_commit(session: AsyncSession, hook: Callable[[], None]) -> None:
    """Run `hook` if and when this session's transaction commits."""
    session.info.setdefault(_COMMIT_HOOKS, []).append(hook)


def after_rollback(session: AsyncSession, hook: Callable[[], None]) -> None:
    """Run `hook` if this session's transaction rolls back (undo work outside the database)."""
    session.info.setdefault(_ROLLBACK_HOOKS, []).append(hook)


_VIOLATIONS = "crier.commit_violations"


def raise_on_violation(session: AsyncSession, constraint: str, error: Exception) -> None:
    """If this transaction fails on `constraint` (a check the database makes at commit),
    raise `error` in its place."""
    session.info.setdefault(_VIOLATIONS, {})[constraint] = error


def _replacement(errors: dict[str, Exception], exc: BaseException | None) -> Exception | None:
    """The error registered for the constraint `exc` (psycopg's) failed on, if any."""
    if not isinstance(exc, psycopg.errors.IntegrityError):
        return None
    constraint = exc.diag.constraint_name
    return errors.get(constraint) if constraint else None


def _run_hooks(session: AsyncSession, name: str) -> None:
    for hook in session.info.pop(name, []):
        try:
            hook()
        except Exception:  # a failed cleanup must not mask the outcome
            log.exception("transaction hook failed")


Statement = tuple[TextClause, dict[str, Any]]
"""A `text()` statement and its parameters, for `Database.pipelined`."""


class Answer:
    """What the server answers to one statement of a pipelined transaction."""

    def __init__(self, cursor: psycopg.AsyncCursor[dict[str, Any]]) -> None:
        self._cursor = cursor

    async def rows(self) -> list[dict[str, Any]]:
        """The statement's rows, waiting for them (and for those sent before) if need be;
        raises the statement's error if it failed."""
        return await self._cursor.fetchall()


class _WholePipeline(psycopg.AsyncPipeline):
    """psycopg's pipeline, except that it has sent everything it holds before it waits for
    answers.

    psycopg (3.3.9, and its main branch in July 2026) stops writing once no command is left
    to queue, even when the socket took only part of what was queued. A statement larger than
    the socket's buffer (a request body of 2 MB, say) is then left half-sent while psycopg
    waits for its answer and the server for its end: forever, and the pooled connection is
    lost with them. Draining the output buffer after each exchange, as psycopg's own `send`
    does outside pipelines, ends that.
    """

    def _communicate_gen(self) -> PQGen[None]:
        yield from super()._communicate_gen()
        yield from send_whole(self.pgconn)


class Pipelined:
    """A transaction of `Database.pipelined`."""

    def __init__(
        self, connection: psycopg.AsyncConnection[Any], compile: Callable[[TextClause], str]
    ) -> None:
        self._connection = connection
        self._compile = compile
        self._violations: dict[str, Exception] = {}
        self._committed = False

    async def send(self, statement: Statement) -> Answer:
        """Send `statement` without waiting for its answer."""
        sql, params = statement
        cursor = self._connection.cursor(row_factory=dict_row)
        await cursor.execute(self._compile(sql), params)
        return Answer(cursor)

    async def commit(self) -> None:
        """Send the COMMIT and wait for it, and so for every answer still due."""
        if not self._committed:
            await self._connection.commit()
            self._committed = True

    def raise_on_violation(self, constraint: str, error: Exception) -> None:
        """If this transaction fails on `constraint`, raise `error` in its place."""
        self._violations[constraint] = error

    def violation(self, exc: BaseException) -> Exception | None:
        return _replacement(self._violations, exc)


class UnsafeApplicationRole(RuntimeError):
    """The application connection could bypass Row Level Security."""


class Database:
    """An engine and sessions acting as one role: `crier_app` unless told otherwise."""

    def __init__(self, urls: DatabaseUrls, pool_size: int = 10, role: str = APP_ROLE) -> None:
        self.urls = urls
        self.role = role
        connect_args: dict[str, Any] = (
            # A transaction pooler gives each transaction whichever server session is free:
            # a statement prepared by name on one is unknown to the next, and PgBouncer
            # refuses start-up options. The login must be the role (`verify_app_role`).
            {"prepare_threshold": None} if urls.pooled else {"options": f"-c role={role}"}
        )
        self.engine: AsyncEngine = create_async_engine(
            urls.login_for(role),
            pool_size=pool_size,
            max_overflow=pool_size,
            # No pre-ping: it would cost a round trip on every checkout. A connection found
            # dead fails its request once and SQLAlchemy then invalidates the whole pool.
            # Errors and logs never carry bound values (hashes, sealed tokens, emails).
            hide_parameters=True,
            connect_args=connect_args,
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self._compiled: dict[TextClause, str] = {}

    async def verify_app_role(self) -> None:
        """Refuse to serve if the application role could read across workspaces."""
        try:
            async with self.engine.connect() as conn:
                row = (
                    await conn.execute(
                        text(
                            "SELECT current_user, r.rolsuper, r.rolbypassrls "
                            "FROM pg_roles r WHERE r.rolname = current_user"
                        )
                    )
                ).one()
        except OperationalError as exc:
            if "set role" not in str(exc):
                raise
            login = self.urls.login_for(self.role).username
            raise UnsafeApplicationRole(
                f"the login {login!r} may not take the role {self.role!r}; as an "
                f"administrator run: GRANT {self.role} TO {login}"
            ) from None
        if row[0] != self.role or row[1] or row[2]:
            pooled = (
                "; through a transaction pooler the login must be the role itself"
                if self.urls.pooled and row[0] != self.role
                else ""
            )
            raise UnsafeApplicationRole(
                f"the connection acts as {row[0]!r} (superuser={row[1]}, "
                f"bypassrls={row[2]}); it must act as {self.role!r} with neither{pooled}"
            )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in one transaction, committed on success and rolled back on error.

        Work registered with `after_commit` / `after_rollback` (files written or to delete
        beside the rows) runs once the outcome is known; a commit refused by a check
        registered with `raise_on_violation` raises that check's error.
        """
        async with self.sessionmaker() as session:
            try:
                try:
                    async with session.begin():
                        yield session
                except IntegrityError as exc:
                    error = _replacement(session.info.get(_VIOLATIONS, {}), exc.orig)
                    if error is None:
                        raise
                    raise error from None
            except BaseException:
                _run_hooks(session, _ROLLBACK_HOOKS)
                raise
            _run_hooks(session, _COMMIT_HOOKS)

    @asynccontextmanager
    async def workspace_transaction(self, workspace_id: UUID) -> AsyncIterator[AsyncSession]:
        """A transaction that sees only `workspace_id`'s rows: what background jobs use."""
        async with self.transaction() as session:
            await enter_workspace(session, workspace_id)
            yield session

    @asynccontextmanager
    async def pipelined(self) -> AsyncIterator[Pipelined]:
        """A transaction whose statements go to the server as they are sent, without waiting
        for answers (psycopg's pipeline mode): a request that sends its reads together, then
        its writes and the COMMIT together, makes two round trips, where `transaction` makes
        one per statement. Committed on leaving (unless committed already), rolled back on
        error; a commit refused by a check registered with `Pipelined.raise_on_violation`
        raises that check's error.

        For the hottest requests; everything else uses `transaction`.
        """
        async with self.engine.connect() as conn:
            connection = (await conn.get_raw_connection()).driver_connection
            assert isinstance(connection, psycopg.AsyncConnection)
            tx = Pipelined(connection, self._psycopg_sql)
            # `pipeline()` enters the pipeline object it finds on the connection.
            connection._pipeline = _WholePipeline(connection)
            try:
                async with connection.pipeline():
                    yield tx
                    await tx.commit()
            except BaseException as exc:
                await connection.rollback()
                error = tx.violation(exc)
                if error is None:
                    raise
                raise error from None

    async def read_at_once(self, *statements: Statement) -> list[list[dict[str, Any]]]:
        """Run `statements` in one transaction whose BEGIN, statements and COMMIT go to the
        server together: one round trip. The rows of each statement, in order, as dicts.

        The statements cannot depend on each other's results in Python, only in the
        database (an earlier one may enter a workspace for the later ones). If one fails,
        none of their effects are kept.
        """
        async with self.pipelined() as tx:
            answers = [await tx.send(statement) for statement in statements]
            await tx.commit()
            return [await answer.rows() for answer in answers]

    def _psycopg_sql(self, statement: TextClause) -> str:
        """A `text()` statement's SQL with psycopg's placeholders (`%(name)s`)."""
        sql = self._compiled.get(statement)
        if sql is None:
            sql = self._compiled[statement] = str(statement.compile(dialect=self.engine.dialect))
        return sql

    async def listening_connection(self) -> psycopg.AsyncConnection[Any]:
        """A connection outside the pool, in autocommit, for LISTEN: to the direct URL
        when one is given (as its login: LISTEN needs no privilege, and nothing else is run
        on it), else acting as this role on its own URL."""
        if self.urls.direct is not None:
            return await psycopg.AsyncConnection.connect(_libpq(self.urls.direct), autocommit=True)
        return await psycopg.AsyncConnection.connect(
            _libpq(self.urls.login_for(self.role)),
            autocommit=True,
            options=f"-c role={self.role}",
        )

    async def dispose(self) -> None:
        await self.engine.dispose()
