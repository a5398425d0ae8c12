"""Nothing lost, nothing twice: real `crier worker` processes, killed at the worst moments.

These tests run in real time (worker processes read the system clock). Every post in them is
due at once or within seconds; the tests wait, boundedly, for outcomes, never for a
schedule. The sandbox platform runs on loopback in the test's own event loop.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from crier.kit.db import Database, DatabaseUrls
from crier.kit.time import SystemClock
from crier.kit.vault import Vault
from crier.models import Delivery, DeliveryAttempt, Post, PostTarget, SocialAccount
from crier.platforms.bluesky.emulator import Server as BlueskyServer
from crier.platforms.bluesky.emulator import create_emulator_app as create_bluesky_app
from crier.platforms.linkedin.emulator import Network as LinkedInNetwork
from crier.platforms.linkedin.emulator import Token as LinkedInToken
from crier.platforms.linkedin.emulator import create_emulator_app as create_linkedin_app
from crier.platforms.mastodon.emulator import Instance, Token, create_emulator_app
from crier.platforms.sandbox.server import create_sandbox_app
from crier.platforms.sandbox.store import Store
from crier.platforms.x.emulator import Network as XNetwork
from crier.platforms.x.emulator import Token as XToken
from crier.platforms.x.emulator import create_emulator_app as create_x_app
from tests.conftest import MakeTenant
from tests.reference_pds import LosingProxy, ReferencePds
from tests.servers import serving

LEASE_SECONDS = 3


class WorkspaceRef(Protocol):
    id: str
    owner_id: str


@dataclass
class Workspace:
    """A workspace made outside the test API (on a database of the test's own)."""

    id: str
    owner_id: str


@dataclass
class Platform:
    url: str
    http: httpx.AsyncClient

    async def faults(self, **faults: Any) -> None:
        assert (await self.http.put("/control/faults", json=faults)).status_code == 200

    async def copies(self, keys: set[str]) -> dict[str, int]:
        """How many posts the platform holds for each delivery key."""
        received = (await self.http.get("/control/received")).json()["data"]
        counts: dict[str, int] = {}
        for post in received:
            if post["idempotency_key"] in keys:
                counts[post["idempotency_key"]] = counts.get(post["idempotency_key"], 0) + 1
        return counts


@pytest.fixture
async def platform() -> AsyncIterator[Platform]:
    """A sandbox in real time (the workers' clock), fresh for each test."""
    store = Store(None)
    async with (
        serving(create_sandbox_app(store)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield Platform(url, client)
    store.close()


@dataclass
class Workers:
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    log: Path | None = None
    """Where the workers' logs go (nowhere when None)."""

    def start(self, count: int = 1) -> list[subprocess.Popen[bytes]]:
        output = self.log.open("ab") if self.log else subprocess.DEVNULL
        started = [
            subprocess.Popen(
                [sys.executable, "-m", "crier.cli", "worker"],
                env=self.env,
                stdout=output,
                stderr=output,
            )
            for _ in range(count)
        ]
        self.processes += started
        return started

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


@pytest.fixture
def workers(
    db_urls: DatabaseUrls, platform: Platform, vault_key: str, tmp_path: Path
) -> Iterator[Workers]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
    env.update(db_urls.environment())
    env.update(
        CRIER_SANDBOX_URL=platform.url,
        CRIER_SECRET_KEY=vault_key,
        CRIER_DATA_DIR=str(tmp_path),
        CRIER_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        CRIER_WORKER_POLL_SECONDS="0.5",
        CRIER_WORKER_METRICS_PORT="0",
        CRIER_ALLOW_LOOPBACK="true",
    )
    pool = Workers(env)
    yield pool
    pool.stop_all()


async def network_account(
    db: Database,
    tenant: WorkspaceRef,
    platform: str,
    external_id: str,
    handle: str,
    server_url: str | None,
    access_token: bytes,
    refresh_token: bytes | None = None,
    token_expires_at: datetime | None = None,
) -> UUID:
    """An account of a network, stored as connecting it would store it."""
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        account = SocialAccount(
            workspace_id=UUID(tenant.id),
            platform=platform,
            external_id=external_id,
            handle=handle,
            display_name=handle,
            status="active",
            access_token=access_token,
            refresh_token=refresh_token,
            server_url=server_url,
            token_expires_at=token_expires_at,
        )
        session.add(account)
        await session.flush()
        return account.id


async def account_on(platform: Platform, db: Database, vault: Vault, tenant: WorkspaceRef) -> UUID:
    """A social account whose tokens come from this test's sandbox."""
    tokens = (
        await platform.http.post(
            "/oauth/token", data={"grant_type": "client_credentials", "handle": "crash"}
        )
    ).json()
    return await network_account(
        db,
        tenant,
        "sandbox",
        tokens["account_id"],
        "crash",
        None,
        vault.seal(tokens["access_token"]),
        vault.seal(tokens["refresh_token"]),
        datetime.now(UTC) + timedelta(seconds=tokens["expires_in"]),
    )


async def schedule_many(
    db: Database, tenant: WorkspaceRef, account: UUID, count: int, publish_at: datetime
) -> list[UUID]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        posts = [
            Post(
                workspace_id=UUID(tenant.id),
                author_id=UUID(tenant.owner_id),
                status="scheduled",
                publish_at=publish_at,
                payload={"text": f"#{i}"},
            )
            for i in range(count)
        ]
        session.add_all(posts)
        await session.flush()
        session.add_all(
            PostTarget(workspace_id=UUID(tenant.id), post_id=p.id, social_account_id=account)
            for p in posts
        )
        return [p.id for p in posts]


async def eventually(check: Any, seconds: float) -> bool:
    """Poll `check()` until it holds, for at most `seconds` (outcomes, not schedules)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(0.2)
    return bool(await check())


async def post_statuses(db: Database, tenant: WorkspaceRef, posts: list[UUID]) -> dict[UUID, str]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        rows = await session.execute(select(Post.id, Post.status).where(Post.id.in_(posts)))
        return {post_id: status for post_id, status in rows.all()}


async def deliveries_of(db: Database, tenant: WorkspaceRef, posts: list[UUID]) -> list[Delivery]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        rows = await session.execute(select(Delivery).where(Delivery.post_id.in_(posts)))
        return list(rows.scalars())


async def attempts_of(
    db: Database, tenant: WorkspaceRef, posts: list[UUID]
) -> list[DeliveryAttempt]:
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        rows = await session.execute(
            select(DeliveryAttempt)
            .join(
                Delivery,
                (Delivery.workspace_id == DeliveryAttempt.workspace_id)
                & (Delivery.id == DeliveryAttempt.delivery_id),
            )
            .where(Delivery.post_id.in_(posts))
        )
        return list(rows.scalars())


async def all_published(db: Database, tenant: WorkspaceRef, posts: list[UUID]) -> bool:
    return set((await post_statuses(db, tenant, posts)).values()) == {"published"}


async def assert_exactly_once(
    db: Database, tenant: WorkspaceRef, platform: Platform, posts: list[UUID]
) -> list[Delivery]:
    deliveries = await deliveries_of(db, tenant, posts)
    assert len(deliveries) == len(posts)
    assert {d.status for d in deliveries} == {"published"}
    copies = await platform.copies({str(d.id) for d in deliveries})
    assert len(copies) == len(posts), "every post reached the platform"
    assert set(copies.values()) == {1}, "and none twice"
    return deliveries


async def test_three_workers_publish_a_thousand_posts_due_in_one_second_exactly_once(
    make_tenant: MakeTenant, db: Database, vault: Vault, platform: Platform, workers: Workers
) -> None:
    tenant = await make_tenant()
    account = await account_on(platform, db, vault, tenant)
    posts = await schedule_many(db, tenant, account, 1000, datetime.now(UTC) + timedelta(seconds=2))
    workers.start(3)
    assert await eventually(lambda: all_published(db, tenant, posts), 180)
    await assert_exactly_once(db, tenant, platform, posts)


@pytest.mark.parametrize("lease", [LEASE_SECONDS, 600])
async def test_a_worker_killed_after_claiming_hands_its_posts_over(
    make_tenant: MakeTenant,
    db: Database,
    vault: Vault,
    platform: Platform,
    workers: Workers,
    lease: int,
) -> None:
    """Once its leases end, or, with leases far longer than this test may run (600 s
    against the 60 s it waits), once its heartbeat has been silent for a few seconds."""
    workers.env["CRIER_WORKER_LEASE_SECONDS"] = str(lease)
    tenant = await make_tenant()
    account = await account_on(platform, db, vault, tenant)
    posts = await schedule_many(db, tenant, account, 5, datetime.now(UTC) + timedelta(seconds=4))
    [first] = workers.start(1)

    async def claimed_and_prepared() -> bool:
        statuses = set((await post_statuses(db, tenant, posts)).values())
        return statuses == {"queued"} and len(await deliveries_of(db, tenant, posts)) == 5

    assert await eventually(claimed_and_prepared, 30)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    assert set((await post_statuses(db, tenant, posts)).values()) == {"queued"}
    workers.start(1)
    assert await eventually(lambda: all_published(db, tenant, posts), 60)
    await assert_exactly_once(db, tenant, platform, posts)


async def test_a_worker_killed_mid_send_leaves_nothing_lost_or_doubled(
    make_tenant: MakeTenant, db: Database, vault: Vault, platform: Platform, workers: Workers
) -> None:
    tenant = await make_tenant()
    account = await account_on(platform, db, vault, tenant)
    await platform.faults(latency_ms=2500)
    posts = await schedule_many(db, tenant, account, 3, datetime.now(UTC))
    [first] = workers.start(1)

    async def sending() -> bool:
        attempts = await attempts_of(db, tenant, posts)
        return len([a for a in attempts if a.outcome == "sending"]) == 3

    assert await eventually(sending, 30)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    await platform.faults()
    workers.start(1)
    assert await eventually(lambda: all_published(db, tenant, posts), 60)
    await assert_exactly_once(db, tenant, platform, posts)


async def test_a_worker_killed_after_the_platform_accepted_does_not_send_again(
    make_tenant: MakeTenant, db: Database, vault: Vault, platform: Platform, workers: Workers
) -> None:
    tenant = await make_tenant()
    account = await account_on(platform, db, vault, tenant)
    await platform.faults(hang_after_accept_next=3, hang_seconds=6)
    posts = await schedule_many(db, tenant, account, 3, datetime.now(UTC))
    [first] = workers.start(1)

    async def accepted() -> bool:
        return (
            len(await platform.copies({str(d.id) for d in await deliveries_of(db, tenant, posts)}))
            == 3
        )

    assert await eventually(accepted, 30)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    workers.start(1)
    assert await eventually(lambda: all_published(db, tenant, posts), 60)
    await assert_exactly_once(db, tenant, platform, posts)
    attempts = await attempts_of(db, tenant, posts)
    assert len(attempts) == 3, "settled by looking each key up, not by sending again"
    assert {a.outcome for a in attempts} == {"published"}


async def test_a_worker_outlives_a_database_restart(
    tmp_path: Path, platform: Platform, vault: Vault, vault_key: str
) -> None:
    """The database goes away under a running worker and comes back: posts scheduled before
    and after are published, and the worker never exits."""
    from crier.kit.db import migrate as migrations
    from crier.kit.db.embedded import EmbeddedPostgres
    from crier.workspace.service import create_workspace

    server = EmbeddedPostgres(tmp_path / "own-db")
    urls = server.start()
    migrations.upgrade(urls.owner)
    db = Database(urls, pool_size=2)
    async with db.transaction() as session:
        created = await create_workspace(session, name="Restart", owner_email="r@example.com")
    tenant = Workspace(str(created.workspace.id), str(created.owner.id))
    account = await account_on(platform, db, vault, tenant)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
    env.update(urls.environment())
    env.update(
        CRIER_SANDBOX_URL=platform.url,
        CRIER_SECRET_KEY=vault_key,
        CRIER_DATA_DIR=str(tmp_path / "data"),
        CRIER_WORKER_LEASE_SECONDS=str(LEASE_SECONDS),
        CRIER_WORKER_POLL_SECONDS="0.5",
        CRIER_WORKER_METRICS_PORT="0",
        CRIER_ALLOW_LOOPBACK="true",
    )
    log = tmp_path / "worker.log"
    pool = Workers(env, log=log)
    [worker] = pool.start(1)
    try:
        before = await schedule_many(db, tenant, account, 2, datetime.now(UTC))
        assert await eventually(lambda: all_published(db, tenant, before), 30)
        await db.dispose()
        server.stop()  # the server goes down under the worker

        async def noticed() -> bool:
            return "worker round failed" in log.read_text()

        assert await eventually(noticed, 30), "the worker did not try while it was down"
        assert worker.poll() is None, "the worker exited when the database went away"
        urls = server.start()
        db = Database(urls, pool_size=2)
        after = await schedule_many(db, tenant, account, 2, datetime.now(UTC))
        assert await eventually(lambda: all_published(db, tenant, after), 60)
        assert worker.poll() is None
        await assert_exactly_once(db, tenant, platform, before + after)
    finally:
        pool.stop_all()
        await db.dispose()
        server.stop()


async def kill_while_held(
    db: Database,
    tenant: WorkspaceRef,
    workers: Workers,
    account: UUID,
    stored: Callable[[], Awaitable[bool]],
) -> list[Delivery]:
    """Three posts for `account`, a worker killed once the network has stored all three
    while it still holds its answers, and another worker that takes over: the deliveries,
    once every post is published."""
    posts = await schedule_many(db, tenant, account, 3, datetime.now(UTC))
    [first] = workers.start(1)
    assert await eventually(stored, 60), "the network did not store the posts"
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    workers.start(1)
    assert await eventually(lambda: all_published(db, tenant, posts), 60)
    return await deliveries_of(db, tenant, posts)


@pytest.mark.parametrize("keys", ["kept", "ignored"])
async def test_a_worker_killed_while_mastodon_held_the_stored_status_posts_it_once(
    make_tenant: MakeTenant, db: Database, vault: Vault, workers: Workers, keys: str
) -> None:
    """The worker that takes over looks each status up among the account's own before any
    resend, and finds the ones the instance stored while the killed worker waited: on an
    instance that keeps Idempotency-Keys (Mastodon) and on one that ignores them
    (GoToSocial), where a resend would post again."""
    instance = Instance(SystemClock())
    instance.faults.ignore_idempotency_keys = keys == "ignored"
    async with serving(create_emulator_app(instance)) as url:
        tenant = await make_tenant()
        person = instance.account_named("crash")
        instance.tokens["crash-token"] = Token("crier", person["id"], {"read", "write"})
        account = await network_account(
            db, tenant, "mastodon", person["id"], "crash@127.0.0.1", url, vault.seal("crash-token")
        )
        instance.faults.hang_after_store = 3
        instance.faults.hang_seconds = 8

        async def stored() -> bool:
            return len(instance.statuses) == 3

        deliveries = await kill_while_held(db, tenant, workers, account, stored)
        for delivery in deliveries:
            [status] = instance.statuses_with_key(str(delivery.id))
            assert delivery.external_id == status.id
        assert len(instance.statuses) == 3
        attempts = await attempts_of(db, tenant, [d.post_id for d in deliveries])
        assert sorted(a.delivery_id for a in attempts) == sorted(d.id for d in deliveries)
        assert {a.outcome for a in attempts} == {"published"}  # one each: none sent again


async def test_a_worker_killed_while_bluesky_held_the_stored_post_posts_it_once(
    make_tenant: MakeTenant, db: Database, vault: Vault, workers: Workers
) -> None:
    """Bluesky has no idempotency key, but Crier names each post's record itself: the
    worker that takes over finds the record the killed one wrote, under the key derived
    from the delivery, and sends nothing again."""
    server = BlueskyServer(SystemClock())
    async with serving(create_bluesky_app(server)) as url:
        tenant = await make_tenant()
        person = server.create_account("crash.test")
        async with httpx.AsyncClient() as client:
            signed_in = await client.post(
                f"{url}/xrpc/com.atproto.server.createSession",
                json={"identifier": "crash.test", "password": server.app_password("crash.test")},
            )
        tokens = signed_in.json()
        account = await network_account(
            db,
            tenant,
            "bluesky",
            person.did,
            person.handle,
            url,
            vault.seal(tokens["accessJwt"]),
            vault.seal(tokens["refreshJwt"]),
        )
        server.faults.hang_after_store = 3
        server.faults.hang_seconds = 8

        async def stored() -> bool:
            return len(server.posts_of(person.did)) == 3

        deliveries = await kill_while_held(db, tenant, workers, account, stored)
        uris = {p["uri"] for p in server.posts_of(person.did)}
        assert {d.external_id for d in deliveries} == uris
        assert len(uris) == 3


async def test_a_worker_killed_while_the_reference_pds_held_the_stored_post_posts_it_once(
    make_tenant: MakeTenant, db: Database, vault: Vault, workers: Workers, pds: ReferencePds
) -> None:
    """The same on the reference Bluesky server: its answers to the posts it stored are
    held back until the worker waiting on them is killed; the worker that takes over meets
    the records already there under their keys and posts nothing twice."""
    proxy = LosingProxy(pds.url, lose=3, hold_seconds=8)
    async with serving(proxy) as url:
        tenant = await make_tenant()
        handle = f"crash{tenant.slug[-6:]}.test".lower()
        did, _, app_password = pds.account(handle)
        tokens = pds.call(
            "com.atproto.server.createSession", identifier=handle, password=app_password
        )
        account = await network_account(
            db,
            tenant,
            "bluesky",
            did,
            handle,
            url,
            vault.seal(tokens["accessJwt"]),
            vault.seal(tokens["refreshJwt"]),
        )

        async def stored() -> bool:
            return proxy.lose == 0 and len(pds.records(did)) == 3

        deliveries = await kill_while_held(db, tenant, workers, account, stored)
        uris = {r["uri"] for r in pds.records(did)}
        assert {d.external_id for d in deliveries} == uris
        assert len(uris) == 3


async def test_a_worker_killed_while_x_held_the_stored_post_finds_it_and_posts_once(
    make_tenant: MakeTenant, db: Database, vault: Vault, workers: Workers
) -> None:
    """X has no idempotency key: the worker that takes over looks each post up among the
    account's recent posts, finds the ones X stored while the killed worker waited, and
    sends none of them again."""
    network = XNetwork(SystemClock())
    client = network.register_client(["http://127.0.0.1:8000/v1/oauth/callback/x"])
    async with serving(create_x_app(network)) as url:
        tenant = await make_tenant()
        person = network.user_named("crash")
        scopes = {"tweet.read", "tweet.write", "users.read", "media.write", "offline.access"}
        network.tokens["crash-token"] = XToken(
            client.client_id, person.id, scopes, datetime.now(UTC) + timedelta(hours=2)
        )
        account = await network_account(
            db,
            tenant,
            "x",
            person.id,
            person.username,
            None,
            vault.seal("crash-token"),
            None,
            datetime.now(UTC) + timedelta(hours=2),
        )
        workers.env.update(
            CRIER_X_CLIENT_ID=client.client_id,
            CRIER_X_CLIENT_SECRET=str(client.client_secret),
            CRIER_X_API_URL=url,
        )
        network.faults.hang_after_store = 3
        network.faults.hang_seconds = 8

        async def stored() -> bool:
            return len(network.tweets_of(person.id)) == 3

        deliveries = await kill_while_held(db, tenant, workers, account, stored)
        tweets = {t.id: t for t in network.tweets_of(person.id)}
        assert {d.external_id for d in deliveries} == set(tweets)
        assert len(tweets) == 3
        attempts = await attempts_of(db, tenant, [d.post_id for d in deliveries])
        assert sorted(a.delivery_id for a in attempts) == sorted(d.id for d in deliveries)
        assert {a.outcome for a in attempts} == {"published"}  # one each: none sent again


async def test_a_worker_killed_while_linkedin_held_the_stored_post_posts_it_once(
    make_tenant: MakeTenant, db: Database, vault: Vault, workers: Workers
) -> None:
    """LinkedIn has no idempotency key and member posts cannot be listed: the worker that
    takes over sends each post again, LinkedIn refuses each as a duplicate naming the post
    it stored while the killed worker waited, and that post is the delivery's."""
    network = LinkedInNetwork(SystemClock())
    client = network.register_client(["http://127.0.0.1:8000/v1/oauth/callback/linkedin"])
    async with serving(create_linkedin_app(network)) as url:
        tenant = await make_tenant()
        member = network.member_named("Crash Test")
        network.tokens["crash-token"] = LinkedInToken(
            client.client_id,
            member.id,
            {"openid", "profile", "w_member_social"},
            datetime.now(UTC) + timedelta(days=60),
        )
        account = await network_account(
            db,
            tenant,
            "linkedin",
            member.id,
            member.name,
            None,
            vault.seal("crash-token"),
            None,
            datetime.now(UTC) + timedelta(days=60),
        )
        workers.env.update(
            CRIER_LINKEDIN_CLIENT_ID=client.client_id,
            CRIER_LINKEDIN_CLIENT_SECRET=client.client_secret,
            CRIER_LINKEDIN_API_URL=url,
            CRIER_LINKEDIN_OAUTH_URL=f"{url}/oauth/v2",
        )
        network.faults.hang_after_store = 3
        network.faults.hang_seconds = 8

        async def stored() -> bool:
            return len(network.posts_of(member.id)) == 3

        deliveries = await kill_while_held(db, tenant, workers, account, stored)
        urns = {p.urn for p in network.posts_of(member.id)}
        assert {d.external_id for d in deliveries} == urns
        assert len(urns) == 3
