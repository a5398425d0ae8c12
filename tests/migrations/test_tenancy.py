"""The tenant wall, probed directly in PostgreSQL as the application role."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from sqlalchemy import text

from crier.kit.db import Database, DatabaseUrls
from tests.conftest import MakeTenant, connect_as

# Every tenant table, each with an INSERT of one row of workspace `ws`. The catalog test
# below fails if a table with `workspace_id` is missing here, so no table escapes these tests.
INSERTS: dict[str, str] = {
    "members": "INSERT INTO members (workspace_id, id, user_id, name, role) "
    "VALUES (%(ws)s, %(id)s, %(user)s, 'Probe', 'viewer')",
    "api_keys": "INSERT INTO api_keys (workspace_id, id, member_id, name, prefix, secret_hash) "
    "VALUES (%(ws)s, %(id)s, %(member)s, 'probe', 'crier_sk_probe', %(hash)s)",
    "social_accounts": "INSERT INTO social_accounts "
    "(workspace_id, id, platform, external_id, handle, display_name) "
    "VALUES (%(ws)s, %(id)s, 'sandbox', 'ext', 'probe', 'Probe')",
    "posts": "INSERT INTO posts (workspace_id, id, author_id, payload) "
    'VALUES (%(ws)s, %(id)s, %(member)s, \'{"text": "hi"}\')',
    "post_targets": "INSERT INTO post_targets (workspace_id, id, post_id, social_account_id) "
    "VALUES (%(ws)s, %(id)s, %(post)s, %(account)s)",
    "media_assets": "INSERT INTO media_assets "
    "(workspace_id, id, category, content_type, storage_path, size_bytes, sha256) "
    "VALUES (%(ws)s, %(id)s, 'image', 'image/png', 'probe.png', 1, 'x')",
    "post_media": "INSERT INTO post_media (workspace_id, id, post_id, media_id) "
    "VALUES (%(ws)s, %(id)s, %(post)s, %(media)s)",
    "deliveries": "INSERT INTO deliveries "
    "(workspace_id, id, post_id, post_target_id, social_account_id, platform) "
    "VALUES (%(ws)s, %(id)s, %(post)s, %(target)s, %(account)s, 'sandbox')",
    "delivery_attempts": "INSERT INTO delivery_attempts "
    "(workspace_id, id, delivery_id, number, started_at) "
    "VALUES (%(ws)s, %(id)s, %(delivery)s, %(number)s, now())",
    "webhook_endpoints": "INSERT INTO webhook_endpoints (workspace_id, id, url, secret) "
    "VALUES (%(ws)s, %(id)s, 'https://hooks.example.com/crier', '\\x00')",
    "webhook_events": "INSERT INTO webhook_events (workspace_id, id, type, payload) "
    "VALUES (%(ws)s, %(id)s, 'post.scheduled', '{}')",
    "webhook_deliveries": "INSERT INTO webhook_deliveries "
    "(workspace_id, id, event_id, endpoint_id) VALUES (%(ws)s, %(id)s, %(event)s, %(endpoint)s)",
    "webhook_attempts": "INSERT INTO webhook_attempts "
    "(workspace_id, id, delivery_id, number, started_at, duration_ms) "
    "VALUES (%(ws)s, %(id)s, %(webhook_delivery)s, %(number)s, now(), 5)",
    "idempotency_keys": "INSERT INTO idempotency_keys (workspace_id, id, key, fingerprint, "
    "response_status, response_headers, response_body, expires_at) "
    "VALUES (%(ws)s, %(id)s, %(external)s, 'f', 201, '{}', '\\x00', now())",
    "reviews": "INSERT INTO reviews "
    "(workspace_id, id, social_account_id, location_id, external_id, rating, reviewed_at,"
    " network_updated_at, feed_sequence) "
    "VALUES (%(ws)s, %(id)s, %(account)s, 'loc', %(external)s, 5, now(), now(), %(number)s)",
    "review_feeds": "INSERT INTO review_feeds (workspace_id, id, last_sequence) "
    "VALUES (%(ws)s, %(id)s, 1)",
    "review_syncs": "INSERT INTO review_syncs (workspace_id, id, social_account_id, next_sync_at) "
    "VALUES (%(ws)s, %(id)s, %(account)s, now())",
    "review_replies": "INSERT INTO review_replies "
    "(workspace_id, id, review_id, action, text, origin, status) "
    "VALUES (%(ws)s, %(id)s, %(review)s, 'reply', 'Thanks', 'crier', 'pending')",
    "review_alert_rules": "INSERT INTO review_alert_rules "
    "(workspace_id, id, name, max_rating, active_from) "
    "VALUES (%(ws)s, %(id)s, %(external)s, 2, now())",
    "review_alerts": "INSERT INTO review_alerts (workspace_id, id, rule_id, review_id) "
    "VALUES (%(ws)s, %(id)s, %(rule)s, %(review)s)",
    "review_templates": "INSERT INTO review_templates (workspace_id, id, name, text) "
    "VALUES (%(ws)s, %(id)s, %(external)s, 'Thank you, {reviewer_name}!')",
    "scheduled_post_months": "INSERT INTO scheduled_post_months "
    "(workspace_id, id, month_start, scheduled) VALUES (%(ws)s, %(id)s, clock_timestamp(), 0)",
    "analytics_generations": "INSERT INTO analytics_generations (workspace_id, id, generation) "
    "VALUES (%(ws)s, %(id)s, 1)",
    "analytics_snapshots": "INSERT INTO analytics_snapshots "
    "(workspace_id, id, social_account_id, metric, value, date) "
    "VALUES (%(ws)s, %(id)s, %(account)s, 'likes', 3, %(date)s)",
    "analytics_rollups": "INSERT INTO analytics_rollups (workspace_id, id, next_run_at) "
    "VALUES (%(ws)s, %(id)s, now())",
    "analytics_views": "INSERT INTO analytics_views "
    "(workspace_id, id, name, metrics, relative_range) "
    "VALUES (%(ws)s, %(id)s, %(external)s, '{likes}', 'last_7_days')",
    "analytics_exports": "INSERT INTO analytics_exports "
    "(workspace_id, id, format, title, metrics, first_day, last_day, granularity) "
    "VALUES (%(ws)s, %(id)s, 'csv', 'Export', '{likes}', %(date)s, %(date)s, 'day')",
    "metric_fetches": "INSERT INTO metric_fetches "
    "(workspace_id, id, social_account_id, since, next_fetch_at) "
    "VALUES (%(ws)s, %(id)s, %(account)s, now(), now())",
    "metric_observations": "INSERT INTO metric_observations "
    "(workspace_id, id, social_account_id, metric, value, observed_at) "
    "VALUES (%(ws)s, %(id)s, %(account)s, 'followers', 12, now())",
    "oauth_states": "INSERT INTO oauth_states "
    "(workspace_id, id, member_id, platform, secret_hash, code_verifier, expires_at) "
    "VALUES (%(ws)s, %(id)s, %(member)s, 'mastodon', %(hash)s, '\\x00', now())",
    "oauth_grants": "INSERT INTO oauth_grants "
    "(workspace_id, id, member_id, platform, choices, expires_at) "
    "VALUES (%(ws)s, %(id)s, %(member)s, 'google_business', '[]', now())",
}
TENANT_TABLES = sorted(INSERTS)


@dataclass
class Seeded:
    """A workspace with one row of its own in every tenant table."""

    ws: uuid.UUID
    refs: dict[str, object]
    rows: dict[str, uuid.UUID]

    def params(self, **override: object) -> dict[str, object]:
        return {
            **self.refs,
            "ws": self.ws,
            "id": uuid.uuid4(),
            "hash": secrets.token_bytes(32),
            "number": secrets.randbelow(30000) + 1,
            "external": secrets.token_hex(4),
            "date": f"2026-01-{secrets.randbelow(28) + 1}",
            **override,
        }


def app_connection(urls: DatabaseUrls) -> psycopg.Connection[tuple[object, ...]]:
    return connect_as(urls)


def enter(conn: psycopg.Connection[tuple[object, ...]], ws: uuid.UUID | None) -> None:
    if ws is not None:
        conn.execute("SELECT set_config('app.workspace_id', %s, true)", [str(ws)])


def run_in(
    conn: psycopg.Connection[tuple[object, ...]],
    ws: uuid.UUID,
    statement: str,
    params: Sequence[Any] | Mapping[str, Any] | None = None,
) -> None:
    """Run one statement in its own transaction, inside workspace `ws`."""
    with conn.transaction():
        enter(conn, ws)
        conn.execute(statement, params)


def seed(urls: DatabaseUrls, ws: uuid.UUID) -> Seeded:
    with app_connection(urls) as conn, conn.transaction():
        enter(conn, ws)
        member = conn.execute("SELECT id FROM members LIMIT 1").fetchone()
        assert member is not None
        email = f"probe-{secrets.token_hex(4)}@example.com"
        conn.execute("SELECT set_config('app.user_email', %s, true)", [email])
        user = uuid.uuid4()
        conn.execute("INSERT INTO users (id, email) VALUES (%s, %s)", [user, email])
        seeded = Seeded(ws, {"member": member[0], "user": user}, {})
        for table in INSERTS:  # dict order: referenced rows come first
            params = seeded.params()
            conn.execute(INSERTS[table], params)
            seeded.rows[table] = params["id"]  # type: ignore[assignment]
            if table == "social_accounts":
                seeded.refs["account"] = params["id"]
            if table == "posts":
                seeded.refs["post"] = params["id"]
            if table == "media_assets":
                seeded.refs["media"] = params["id"]
            if table == "post_targets":
                seeded.refs["target"] = params["id"]
            if table == "deliveries":
                seeded.refs["delivery"] = params["id"]
            if table == "webhook_endpoints":
                seeded.refs["endpoint"] = params["id"]
            if table == "webhook_events":
                seeded.refs["event"] = params["id"]
            if table == "webhook_deliveries":
                seeded.refs["webhook_delivery"] = params["id"]
            if table == "reviews":
                seeded.refs["review"] = params["id"]
            if table == "review_alert_rules":
                seeded.refs["rule"] = params["id"]
        return seeded


@pytest.fixture
async def two(make_tenant: MakeTenant, db_urls: DatabaseUrls) -> tuple[Seeded, Seeded]:
    a, b = await make_tenant(), await make_tenant()
    return seed(db_urls, uuid.UUID(a.id)), seed(db_urls, uuid.UUID(b.id))


@pytest.fixture
def conn(db_urls: DatabaseUrls) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    with app_connection(db_urls) as connection:
        yield connection


def test_the_application_role_owns_nothing_and_cannot_bypass_rls(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    row = conn.execute(
        "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
    ).fetchone()
    assert row == ("crier_app", False, False)
    owned = conn.execute(
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner "
        "WHERE r.rolname = 'crier_app'"
    ).fetchone()
    assert owned == (0,)


def test_every_table_with_a_workspace_id_has_forced_rls_and_a_tenant_policy(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    rows = conn.execute("""
        SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity,
               coalesce(array_agg(pg_get_expr(p.polqual, p.polrelid))
                        FILTER (WHERE p.polname = 'tenant_isolation'), '{}'),
               coalesce(array_agg(pg_get_expr(p.polwithcheck, p.polrelid))
                        FILTER (WHERE p.polname = 'tenant_isolation'), '{}')
        FROM pg_class c
        JOIN pg_namespace n ON n.oid = c.relnamespace
        LEFT JOIN pg_policy p ON p.polrelid = c.oid
        WHERE c.relkind IN ('r', 'p')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema')
          AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid
                      AND a.attname = 'workspace_id' AND NOT a.attisdropped)
        GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity
    """).fetchall()
    found = {name for name, *_ in rows}
    assert found == set(TENANT_TABLES), "every tenant table must be probed by the tests below"
    for name, enabled, forced, using, check in rows:
        assert enabled, f"{name} lacks ENABLE ROW LEVEL SECURITY"
        assert forced, f"{name} lacks FORCE ROW LEVEL SECURITY"
        expected = "(workspace_id = crier_current_workspace())"
        assert using == [expected], f"{name} lacks the tenant policy"
        assert check == [expected], f"{name}'s policy does not check writes"


def test_tenant_keys_lead_with_workspace_id_and_foreign_keys_carry_it(
    conn: psycopg.Connection[tuple[object, ...]],
) -> None:
    pks: dict[str, list[str]] = dict(
        conn.execute(  # type: ignore[arg-type]
            """
        SELECT c.conrelid::regclass::text,
               array(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(n, i)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n
                     ORDER BY k.i)
        FROM pg_constraint c WHERE c.contype = 'p'
    """
        ).fetchall()
    )
    for table in TENANT_TABLES:
        assert pks[table] == ["workspace_id", "id"], table
    fks = conn.execute("""
        SELECT c.conrelid::regclass::text, c.confrelid::regclass::text,
               array(SELECT a.attname::text FROM unnest(c.conkey) k(n)
                     JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.n)
        FROM pg_constraint c WHERE c.contype = 'f'
    """).fetchall()
    between_tenants = [
        (str(s), str(t), list(cols))  # type: ignore[call-overload]
        for s, t, cols in fks
        if s in TENANT_TABLES and t in TENANT_TABLES
    ]
    assert between_tenants, "the schema has foreign keys between tenant tables"
    for source, target, columns in between_tenants:
        assert "workspace_id" in columns, f"{source} -> {target} must include workspace_id"


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_no_context_sees_nothing(
    table: str, two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    assert conn.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_another_workspaces_rows_cannot_be_read(
    table: str, two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    a, b = two
    with conn.transaction():
        enter(conn, a.ws)
        visible = conn.execute(f"SELECT DISTINCT workspace_id FROM {table}").fetchall()
        assert visible == [(a.ws,)]
        by_id = conn.execute(
            f"SELECT count(*) FROM {table} WHERE id = %s",
            [b.rows[table]],
        ).fetchone()
        assert by_id == (0,)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_another_workspaces_rows_cannot_be_updated_or_deleted(
    table: str, two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    a, b = two
    with conn.transaction():
        enter(conn, a.ws)
        updated = conn.execute(
            f"UPDATE {table} SET updated_at = now() WHERE workspace_id = %s",
            [b.ws],
        )
        assert updated.rowcount == 0
        deleted = conn.execute(f"DELETE FROM {table} WHERE id = %s", [b.rows[table]])
        assert deleted.rowcount == 0
    with conn.transaction():
        enter(conn, b.ws)
        still_there = conn.execute(
            f"SELECT count(*) FROM {table} WHERE id = %s",
            [b.rows[table]],
        ).fetchone()
        assert still_there == (1,)


@pytest.mark.parametrize("table", TENANT_TABLES)
def test_rows_cannot_be_inserted_into_or_moved_to_another_workspace(
    table: str, two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    a, b = two
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        run_in(conn, a.ws, INSERTS[table], b.params())
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        run_in(
            conn, a.ws, f"UPDATE {table} SET workspace_id = %s WHERE id = %s", [b.ws, a.rows[table]]
        )


def test_advancing_an_event_sequence_reaches_only_this_workspaces_posts(
    two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    a, b = two
    advance = "SELECT crier_advance_event_sequence(%s, 2)"
    with conn.transaction():
        enter(conn, a.ws)
        assert conn.execute(advance, [a.rows["posts"]]).fetchone() == (2,)
        assert conn.execute(advance, [b.rows["posts"]]).fetchone() == (None,)
    with conn.transaction():
        enter(conn, b.ws)
        sequence = "SELECT event_sequence FROM posts WHERE id = %s"
        assert conn.execute(sequence, [b.rows["posts"]]).fetchone() == (0,)


def test_workspaces_are_walled_too(
    two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    a, b = two
    assert conn.execute("SELECT count(*) FROM workspaces").fetchone() == (0,)
    with conn.transaction():
        enter(conn, a.ws)
        assert conn.execute("SELECT id FROM workspaces").fetchall() == [(a.ws,)]
        assert conn.execute("UPDATE workspaces SET name = 'x' WHERE id = %s", [b.ws]).rowcount == 0
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
        run_in(conn, a.ws, "DELETE FROM workspaces WHERE id = %s", [b.ws])
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        run_in(
            conn,
            a.ws,
            "INSERT INTO workspaces (id, slug, name) VALUES (%s, %s, 'x')",
            [uuid.uuid4(), f"probe-{secrets.token_hex(4)}"],
        )


def test_a_workspace_sees_only_its_own_members_users(
    two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    a, b = two
    assert conn.execute("SELECT count(*) FROM users").fetchone() == (0,)
    with conn.transaction():
        enter(conn, a.ws)
        users = {r[0] for r in conn.execute("SELECT id FROM users")}
        assert a.refs["user"] in users
        assert b.refs["user"] not in users


def test_a_post_target_cannot_point_at_another_workspaces_account(
    two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    a, b = two
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        run_in(conn, a.ws, INSERTS["post_targets"], a.params(account=b.refs["account"]))


def test_a_snapshot_needs_an_account_of_its_own_workspace(
    two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    """The one foreign key of a snapshot, to its account, carries its workspace."""
    a, b = two
    for account in (b.refs["account"], uuid.uuid4()):
        with pytest.raises(psycopg.errors.ForeignKeyViolation):
            run_in(conn, a.ws, INSERTS["analytics_snapshots"], a.params(account=account))


def test_an_api_key_row_is_visible_without_context_only_to_its_secret(
    two: tuple[Seeded, Seeded], conn: psycopg.Connection[tuple[object, ...]]
) -> None:
    a, _ = two
    secret_hash = secrets.token_bytes(32)
    with conn.transaction():
        enter(conn, a.ws)
        conn.execute(INSERTS["api_keys"], a.params(hash=secret_hash))
    with conn.transaction():
        conn.execute("SELECT set_config('app.api_key_hash', %s, true)", [secret_hash.hex()])
        rows = conn.execute("SELECT workspace_id FROM api_keys").fetchall()
        assert rows == [(a.ws,)]
        assert conn.execute("SELECT count(*) FROM members").fetchone() == (0,)


async def test_the_context_does_not_outlive_its_transaction(
    db: Database, two: tuple[Seeded, Seeded]
) -> None:
    a, _ = two
    async with db.engine.connect() as connection:
        async with connection.begin():
            await connection.execute(
                text("SELECT set_config('app.workspace_id', :w, true)"), {"w": str(a.ws)}
            )
            seen = (await connection.execute(text("SELECT count(*) FROM members"))).scalar()
            assert seen
            assert seen > 0
        async with connection.begin():
            after = (await connection.execute(text("SELECT count(*) FROM members"))).scalar()
            assert after == 0
