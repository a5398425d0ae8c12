"""Fixtures: one real PostgreSQL per test session, the API over ASGI, a controllable clock.

With no `DATABASE_URL`, the session starts an embedded server in a temporary folder. With
`DATABASE_URL` (a role allowed to create databases and roles), each session creates its own
database there and drops it afterwards. Either way the application connects as `crier_app`,
so Row Level Security is in force in every test.

Tests isolate themselves by creating their own workspaces: the tenant wall keeps them
apart, which is the very property under test.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy.engine import URL

from crier.config import Settings
from crier.kit.db import Database, DatabaseUrls
from crier.kit.db import migrate as migrations
from crier.kit.db.embedded import EmbeddedPostgres
from crier.kit.db.engine import APP_ROLE, SCHEDULER_ROLE, sqlalchemy_url
from crier.kit.storage import LocalStorage
from crier.kit.vault import Vault
from crier.platforms.registry import TIMEOUT
from crier.platforms.sandbox.server import create_sandbox_app
from crier.platforms.sandbox.store import Store
from crier.runtime import Runtime
from crier.workspace.service import create_workspace
from tests.pgbouncer import through_pgbouncer
from tests.servers import serving

if TYPE_CHECKING:
    from tests.google import Google
    from tests.linkedin import LinkedIn
    from tests.x import X

CLOCK_ORIGIN = "CRIER_TEST_NOW"
"""An ISO 8601 instant with offset at which every test's clock starts, to run the suite as
if on that date (`CRIER_TEST_NOW=2028-02-29T12:00:00Z make test`); the wall clock if unset."""


def clock_origin() -> datetime | None:
    value = os.environ.get(CLOCK_ORIGIN)
    if not value:
        return None
    origin = datetime.fromisoformat(value)
    if origin.utcoffset() is None:
        raise pytest.UsageError(f"{CLOCK_ORIGIN}={value} has no UTC offset")
    return origin.astimezone(UTC)


class FakeClock:
    """A clock that stands still until a test moves it; each test starts it afresh at the
    origin (`CRIER_TEST_NOW`) or, without one, at the wall clock's time."""

    def __init__(self) -> None:
        self._origin = clock_origin()
        self.reset()

    def reset(self) -> None:
        self._now = self._origin or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, instant: datetime) -> None:
        self._now = instant

    def advance(self, delta: timedelta) -> None:
        self._now += delta


@dataclass
class Server:
    """The PostgreSQL server of this test session and how to reach it."""

    admin: URL  # may create databases
    urls: DatabaseUrls  # the migrated test database

    def with_database(self, name: str) -> DatabaseUrls:
        return DatabaseUrls(
            owner=self.urls.owner.set(database=name), app=self.urls.app.set(database=name)
        )


def libpq(url: URL) -> str:
    """A SQLAlchemy URL as a libpq connection string for psycopg."""
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def create_database(server_admin: URL, name: str, owner: str | None) -> None:
    with psycopg.connect(libpq(server_admin), autocommit=True) as conn:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            query = sql.SQL("{} OWNER {}").format(query, sql.Identifier(owner))
        conn.execute(query)


def drop_database(server_admin: URL, name: str) -> None:
    with psycopg.connect(libpq(server_admin), autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    external = os.environ.get("DATABASE_URL")
    name = f"crier_test_{secrets.token_hex(4)}"
    if external:
        if os.environ.get(POOLER):
            raise RuntimeError(f"{POOLER} puts PgBouncer before the embedded server only")
        admin = sqlalchemy_url(external)
        create_database(admin, name, owner=None)
        app = os.environ.get("CRIER_APP_DATABASE_URL")
        urls = DatabaseUrls(
            owner=admin.set(database=name),
            app=sqlalchemy_url(app).set(database=name) if app else admin.set(database=name),
        )
        try:
            migrations.upgrade(urls.owner)
            yield Server(admin=admin, urls=urls)
        finally:
            drop_database(admin, name)
        return
    embedded = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")), delete_on_exit=True)
    base = embedded.start()
    admin = embedded.superuser_url()
    try:
        with psycopg.connect(libpq(admin), autocommit=True) as conn:
            # A throwaway cluster: durability buys nothing here, speed does.
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET synchronous_commit = off")
            conn.execute("SELECT pg_reload_conf()")
        migrations.upgrade(base.owner)
        if os.environ.get(POOLER) == "pgbouncer":
            with through_pgbouncer(base, tmp_path_factory.mktemp("pgbouncer")) as pooled:
                yield Server(admin=admin, urls=pooled)
        else:
            yield Server(admin=admin, urls=base)
    finally:
        embedded.stop()


POOLER = "CRIER_TEST_POOLER"
"""`pgbouncer`: the API and the workers of this test session connect through PgBouncer in
transaction pooling mode (`make test` runs the critical paths so), LISTEN directly."""


@pytest.fixture(scope="session")
def db_urls(pg_server: Server) -> DatabaseUrls:
    return pg_server.urls


@pytest.fixture(scope="session")
async def db(db_urls: DatabaseUrls) -> AsyncIterator[Database]:
    database = Database(db_urls, pool_size=5)
    await database.verify_app_role()
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(autouse=True)
def _fresh_clock(clock: FakeClock) -> None:
    clock.reset()


@pytest.fixture(scope="session")
def vault_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("secrets"))


@pytest.fixture(scope="session")
def vault(vault_dir: Path) -> Vault:
    return Vault.from_settings(None, vault_dir)


@pytest.fixture(scope="session")
def vault_key(vault: Vault, vault_dir: Path) -> str:
    """The test vault's key, for processes that must read the same sealed tokens."""
    return (vault_dir / "secret.key").read_text().strip()


@pytest.fixture(scope="session")
def storage(tmp_path_factory: pytest.TempPathFactory) -> LocalStorage:
    return LocalStorage(Path(tmp_path_factory.mktemp("media")))


@pytest.fixture(scope="session")
async def sandbox_url(clock: FakeClock) -> AsyncIterator[str]:
    """The sandbox platform the API connects accounts to: a real server on loopback."""
    store = Store(None)
    async with serving(create_sandbox_app(store, clock, seed=11)) as url:
        yield url
    store.close()


@pytest.fixture(scope="module")
async def scheduler_db(db_urls: DatabaseUrls) -> AsyncIterator[Database]:
    """The scheduler role's database: what workers and webhook dispatchers claim with."""
    database = Database(db_urls, pool_size=4, role=SCHEDULER_ROLE)
    await database.verify_app_role()
    yield database
    await database.dispose()


def build_runtime(
    db: Database,
    vault: Vault,
    storage: LocalStorage,
    clock: FakeClock,
    sandbox_url: str,
    data_dir: Path,
    platform_timeout: httpx.Timeout = TIMEOUT,
    x: X | None = None,
    linkedin: LinkedIn | None = None,
    google: Google | None = None,
) -> Runtime:
    """The runtime of a test, built by the composition root every process uses, on the
    test's database, vault, media storage and clock. Webhook receivers in tests run on
    127.0.0.1, so loopback is allowed (Mastodon instances too), and media still processing
    on an instance are asked about at once. With `x` (`linkedin`), the server's X
    (LinkedIn) app is the one registered on that emulator."""
    settings = Settings(
        data_dir=data_dir,
        sandbox_url=sandbox_url,
        allow_loopback=True,
        mastodon_media_poll_seconds=0.01,
        bluesky_service_url="http://127.0.0.1:9",  # tests name their server; none is public
        # Workers refresh only their own posts' accounts: a sweep of every workspace would
        # touch other tests' accounts (tests/scheduler/test_refresh.py turns it on).
        worker_refresh_seconds=0,
        # Likewise for review syncs (tests/review turns them on) and metric fetches
        # (tests/analytics does).
        worker_review_poll_seconds=0,
        worker_metrics_poll_seconds=0,
        worker_export_poll_seconds=0,
    )
    if x is not None:  # this server's X app, on the emulator
        settings = settings.model_copy(
            update={
                "x_client_id": x.client.client_id,
                "x_client_secret": x.client.client_secret,
                "x_api_url": x.url,
                "x_authorize_url": x.authorize_url,
                "x_media_poll_seconds": 0.01,
            }
        )
    if linkedin is not None:  # this server's LinkedIn app, on the emulator
        settings = settings.model_copy(
            update={
                "linkedin_client_id": linkedin.client.client_id,
                "linkedin_client_secret": linkedin.client.client_secret,
                "linkedin_pages_client_id": linkedin.pages_client.client_id,
                "linkedin_pages_client_secret": linkedin.pages_client.client_secret,
                "linkedin_api_url": linkedin.url,
                "linkedin_oauth_url": linkedin.oauth_url,
                "linkedin_media_poll_seconds": 0.01,
            }
        )
    if google is not None:  # this server's Google OAuth client, on the emulator
        settings = settings.model_copy(
            update={
                "google_client_id": google.client.client_id,
                "google_client_secret": google.client.client_secret,
                "google_authorize_url": google.authorize_url,
                "google_oauth_url": google.url,
                "google_accounts_url": google.url,
                "google_information_url": google.url,
                "google_business_url": google.url,
                "google_performance_url": google.url,
            }
        )
    return Runtime.build(
        settings,
        db=db,
        clock=clock,
        vault=vault,
        storage=storage,
        platform_timeout=platform_timeout,
    )


@pytest.fixture(scope="session")
async def x_server(clock: FakeClock) -> AsyncIterator[X]:
    """X (the project's emulator) on loopback, on the test clock, with this server's app:
    one for the session, as the API's settings name it."""
    from tests.x import x_network

    async with x_network(clock, Settings().base_url) as network:
        yield network


@pytest.fixture
def x(x_server: X) -> Iterator[X]:
    """The session's X, its faults cleared after the test."""
    yield x_server
    x_server.reset()


@pytest.fixture(scope="session")
async def linkedin_server(clock: FakeClock) -> AsyncIterator[LinkedIn]:
    """LinkedIn (the project's emulator) on loopback, on the test clock, with this server's
    app: one for the session, as the API's settings name it."""
    from tests.linkedin import linkedin_network

    async with linkedin_network(clock, Settings().base_url) as network:
        yield network


@pytest.fixture
def linkedin(linkedin_server: LinkedIn) -> Iterator[LinkedIn]:
    """The session's LinkedIn, its faults cleared after the test."""
    yield linkedin_server
    linkedin_server.reset()


@pytest.fixture(scope="session")
async def google_server(clock: FakeClock) -> AsyncIterator[Google]:
    """Google Business Profile (the project's emulator) on loopback, on the test clock,
    with this server's OAuth client: one for the session, as the API's settings name it."""
    from tests.google import google_network

    async with google_network(clock, Settings().base_url) as network:
        yield network


@pytest.fixture
def google(google_server: Google) -> Iterator[Google]:
    """The session's Google, its faults cleared after the test."""
    yield google_server
    google_server.reset()


@pytest.fixture(scope="session")
async def http(
    db: Database,
    vault: Vault,
    storage: LocalStorage,
    clock: FakeClock,
    sandbox_url: str,
    x_server: X,
    linkedin_server: LinkedIn,
    google_server: Google,
    tmp_path_factory: pytest.TempPathFactory,
) -> AsyncIterator[httpx.AsyncClient]:
    runtime = build_runtime(
        db,
        vault,
        storage,
        clock,
        sandbox_url,
        Path(tmp_path_factory.mktemp("data")),
        x=x_server,
        linkedin=linkedin_server,
        google=google_server,
    )
    transport = httpx.ASGITransport(app=runtime.api(), raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://crier.test") as client:
        yield client
    await runtime.close()


@dataclass
class Tenant:
    """A workspace made for one test, with its owner's API key."""

    id: str
    slug: str
    owner_id: str
    key: str
    http: httpx.AsyncClient

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def get(self, path: str, **kw: object) -> httpx.Response:
        return await self.http.get(path, headers=self.auth, **kw)  # type: ignore[arg-type]

    async def post(self, path: str, **kw: object) -> httpx.Response:
        return await self.http.post(path, headers=self.auth, **kw)  # type: ignore[arg-type]

    async def patch(self, path: str, **kw: object) -> httpx.Response:
        return await self.http.patch(path, headers=self.auth, **kw)  # type: ignore[arg-type]

    async def delete(self, path: str, **kw: object) -> httpx.Response:
        return await self.http.delete(path, headers=self.auth, **kw)  # type: ignore[arg-type]

    async def member_with_key(self, role: str, **extra: object) -> Tenant:
        """Add a member with `role` and return a view of this workspace through their key."""
        email = f"{role}-{secrets.token_hex(4)}@example.com"
        body = {"email": email, "name": role.title(), "role": role, **extra}
        added = await self.post("/v1/members", json=body)
        assert added.status_code == 201, added.text
        member_id = added.json()["id"]
        key = await issue_member_key(self, member_id)
        return Tenant(self.id, self.slug, member_id, key, self.http)


async def issue_member_key(tenant: Tenant, member_id: str) -> str:
    """An API key for another member, issued as operators do (`crier api-key create`)."""
    from crier.workspace.operator import create_key_for

    db: Database = tenant.http._transport.app.state.db  # type: ignore[attr-defined]
    _, _, _, secret = await create_key_for(db, tenant.id, member_id, "test", None)
    return secret


MakeTenant = Callable[..., Awaitable["Tenant"]]


@pytest.fixture
def make_tenant(db: Database, http: httpx.AsyncClient) -> MakeTenant:
    async def make(plan: str = "free", timezone: str = "UTC") -> Tenant:
        async with db.transaction() as session:
            new = await create_workspace(
                session,
                name=f"Test {secrets.token_hex(3)}",
                timezone=timezone,
                plan=plan,
                owner_email=f"owner-{secrets.token_hex(5)}@example.com",
                owner_name="Owner",
            )
        return Tenant(
            str(new.workspace.id), new.workspace.slug, str(new.owner.id), new.api_key_secret, http
        )

    return make


@pytest.fixture
async def tenant(make_tenant: MakeTenant) -> Tenant:
    return await make_tenant()


@pytest.fixture
async def other_tenant(make_tenant: MakeTenant) -> Tenant:
    return await make_tenant()


def connect_as(urls: DatabaseUrls, role: str = APP_ROLE) -> psycopg.Connection[Any]:
    """A plain psycopg connection acting as `role`, as Crier's own connections do: taking
    the role at start-up, or, through a transaction pooler, logging in as the role."""
    login = libpq(urls.login_for(role))
    if urls.pooled:
        return psycopg.connect(login, prepare_threshold=None)
    return psycopg.connect(login, options=f"-c role={role}")


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict[str, object]:
    """The response is an RFC 9457 problem of the given status and type; returns its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json", response.headers
    body: dict[str, object] = response.json()
    assert body["type"] == f"/problems/{slug}", body
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    return body


__all__ = ["FakeClock", "MakeTenant", "Tenant", "assert_problem"]


@pytest.fixture
async def mastodon(clock: FakeClock) -> AsyncIterator[object]:
    """A fresh Mastodon instance (the project's emulator) on loopback, on the test clock."""
    from tests.mastodon import mastodon_instance

    async with mastodon_instance(clock) as instance:
        yield instance


@pytest.fixture(scope="session")
def pds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """The reference Bluesky server, started once for the tests that ask for it."""
    from tests.reference_pds import reference_pds

    with reference_pds(Path(tmp_path_factory.mktemp("pds"))) as server:
        yield server


@pytest.fixture
async def bluesky(clock: FakeClock) -> AsyncIterator[object]:
    """A fresh Bluesky server (the project's emulator) on loopback, on the test clock."""
    from tests.bluesky import bluesky_server

    async with bluesky_server(clock) as server:
        yield server
