"""The migrations produce exactly the schema the models describe, and run both ways."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator

import psycopg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from psycopg.types.json import Jsonb
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


def _seed_account(conn: psycopg.Connection[object]) -> dict[str, uuid.UUID]:
    """A workspace with a member and a social account, made as the owner in `conn`'s
    transaction (whose workspace it becomes); their ids as `INSERTS` parameters."""
    ws, user, member, account = (uuid.uuid4() for _ in range(4))
    email = f"probe-{secrets.token_hex(4)}@example.com"
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
    return params


def test_upgrading_closes_the_pending_deliveries_of_cancelled_posts(scratch: DatabaseUrls) -> None:
    """0010 runs across every workspace although the tables' policies bind their owner."""
    migrations.upgrade(scratch.owner, "0009")
    deliveries: dict[str, uuid.UUID] = {}
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        params = _seed_account(conn)
        ws = params["ws"]
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


def test_upgrading_marks_the_deliveries_that_may_have_reached_their_platform(
    scratch: DatabaseUrls,
) -> None:
    """0011: deliveries in flight are uncertain where they were looked up before (an open
    attempt, or a timeout, interrupted send or platform failure), in every workspace."""
    migrations.upgrade(scratch.owner, "0010")
    # status, attempts, error code, whether an attempt is still open -> uncertain after
    cases = {
        "fresh": ("pending", 0, None, False, False),
        "timed_out": ("pending", 1, "timeout", False, True),
        "interrupted": ("pending", 1, "outcome_unknown", False, True),
        "server_error": ("pending", 1, "platform_unavailable", False, True),
        "throttled": ("pending", 1, "rate_limited", False, False),
        "mid_call": ("sending", 1, None, True, True),
        "published": ("published", 1, None, False, False),
        "failed": ("failed", 3, "timeout", False, False),
    }
    ids: dict[str, uuid.UUID] = {}
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        params = _seed_account(conn)
        ws = params["ws"]
        for name, (status, attempts, code, open_attempt, _) in cases.items():
            post, target, delivery = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
            params["post"] = post
            conn.execute(INSERTS["posts"], {**params, "id": post})
            conn.execute(INSERTS["post_targets"], {**params, "id": target})
            conn.execute(INSERTS["deliveries"], {**params, "id": delivery, "target": target})
            conn.execute(
                "UPDATE deliveries SET status = %s, attempts = %s, error_code = %s WHERE id = %s",
                [status, attempts, code, delivery],
            )
            attempt = {**params, "id": uuid.uuid4(), "delivery": delivery, "number": 1}
            conn.execute(INSERTS["delivery_attempts"], attempt)
            if not open_attempt:
                conn.execute(
                    "UPDATE delivery_attempts SET outcome = 'retrying' WHERE id = %s",
                    [attempt["id"]],
                )
            ids[name] = delivery
    migrations.upgrade(scratch.owner)
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(ws)])
        found: dict[object, object] = dict(
            conn.execute("SELECT id, uncertain FROM deliveries").fetchall()
        )
        forced = conn.execute(
            "SELECT bool_and(relforcerowsecurity) FROM pg_class "
            "WHERE relname IN ('deliveries', 'delivery_attempts')"
        ).fetchone()
    assert {name: found[ids[name]] for name in cases} == {
        name: case[4] for name, case in cases.items()
    }
    assert forced == (True,)


def test_upgrading_rescans_the_locations_whose_reviews_have_no_sentiment(
    scratch: DatabaseUrls,
) -> None:
    """0017: a location with a review stored before sentiment was scored is due at once,
    as a full scan (which scores every review it reads); one whose reviews all have a
    sentiment, or that holds none, keeps its schedule."""
    migrations.upgrade(scratch.owner, "0016")
    later = "now() + interval '10 minutes'"
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        params = _seed_account(conn)
        ws, unscored = params["ws"], params["account"]
        scored, empty = uuid.uuid4(), uuid.uuid4()
        for account in (scored, empty):
            conn.execute(INSERTS["social_accounts"], {**params, "id": account})
        for number, account in enumerate((unscored, scored, empty)):
            conn.execute(
                INSERTS["review_syncs"], {**params, "id": uuid.uuid4(), "account": account}
            )
            conn.execute(
                f"UPDATE review_syncs SET next_sync_at = {later}, scan = 3 "
                "WHERE social_account_id = %s",
                [account],
            )
            if account != empty:
                review = {"id": uuid.uuid4(), "external": f"r{number}", "number": number}
                conn.execute(INSERTS["reviews"], {**params, **review, "account": account})
                if account == scored:
                    conn.execute("UPDATE reviews SET sentiment = 0.5 WHERE id = %s", [review["id"]])
    migrations.upgrade(scratch.owner)
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(ws)])
        found = {
            account: (full, scan, due)
            for account, full, scan, due in conn.execute(
                "SELECT social_account_id, full_scan, scan, next_sync_at <= now() FROM review_syncs"
            ).fetchall()
        }
        forced = conn.execute(
            "SELECT bool_and(relforcerowsecurity) FROM pg_class "
            "WHERE relname IN ('reviews', 'review_syncs')"
        ).fetchone()
    assert found == {
        unscored: (True, 4, True),
        scored: (False, 3, False),
        empty: (False, 3, False),
    }
    assert forced == (True,)


def test_upgrading_renames_the_permission_to_reply_to_reviews_in_grants_and_scopes(
    scratch: DatabaseUrls,
) -> None:
    """0018: `reviews:respond` becomes `reviews:reply` wherever it was stored (a member's
    grants and denials, a key's scopes), in every workspace, and back on downgrade."""
    migrations.upgrade(scratch.owner, "0017")
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        params = _seed_account(conn)
        ws, member = params["ws"], params["member"]
        conn.execute(
            "UPDATE members SET permissions = %s WHERE id = %s",
            [
                Jsonb({"grant": ["reviews:respond", "posts:read"], "deny": ["reviews:respond"]}),
                member,
            ],
        )
        conn.execute(
            "INSERT INTO api_keys (workspace_id, id, member_id, name, prefix, secret_hash, scopes) "
            "VALUES (%s, %s, %s, 'k', 'crier_sk_k', %s, %s)",
            [ws, uuid.uuid4(), member, secrets.token_bytes(32), ["reviews:respond", "posts:read"]],
        )

    def stored() -> tuple[object, ...]:
        with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
            conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(ws)])
            row = conn.execute(
                "SELECT m.permissions, k.scopes FROM members m "
                "JOIN api_keys k ON k.member_id = m.id"
            ).fetchone()
            assert row is not None
            return tuple(row)

    migrations.upgrade(scratch.owner)
    assert stored() == (
        {"grant": ["reviews:reply", "posts:read"], "deny": ["reviews:reply"]},
        ["reviews:reply", "posts:read"],
    )
    migrations.downgrade(scratch.owner, "0017")
    assert stored() == (
        {"grant": ["reviews:respond", "posts:read"], "deny": ["reviews:respond"]},
        ["reviews:respond", "posts:read"],
    )


def test_upgrading_keeps_the_snapshots_and_a_workspace_takes_them_with_its_accounts(
    scratch: DatabaseUrls,
) -> None:
    """0028: the snapshots' own key to the workspace goes, the one to the account (which
    carries `workspace_id`) cascading instead; the rows stay, and removing a workspace
    still removes its snapshots, through its accounts."""
    migrations.upgrade(scratch.owner, "0027")
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        params = _seed_account(conn)
        ws = params["ws"]
        conn.execute(
            INSERTS["analytics_snapshots"], {**params, "id": uuid.uuid4(), "date": "2026-01-02"}
        )
    migrations.upgrade(scratch.owner)

    def snapshots() -> list[tuple[object, ...]]:
        with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
            conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(ws)])
            return conn.execute("SELECT metric, value FROM analytics_snapshots").fetchall()

    assert snapshots() == [("likes", 3.0)]
    with psycopg.connect(libpq(scratch.owner)) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(ws)])
        assert conn.execute("DELETE FROM workspaces WHERE id = %s", [ws]).rowcount == 1
    assert snapshots() == []
