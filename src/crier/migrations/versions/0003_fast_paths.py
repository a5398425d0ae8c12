"""Fast paths: authentication in one round trip, schedule NOTIFY by trigger, monthly count index.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The one setter of the tenant context, paired with crier_current_workspace(): Python's
    # `enter_workspace` calls it, and so does crier_authenticate below.
    op.execute("""
        CREATE FUNCTION crier_enter_workspace(p_workspace uuid) RETURNS void
        LANGUAGE sql VOLATILE
        AS $$ SELECT set_config('app.workspace_id', p_workspace::text, true) $$
    """)
    # Runs as the caller (crier_app), so Row Level Security applies to every query inside:
    # the key is visible only through its hash, the member and workspace only once the
    # key's workspace has been entered. It saves round trips, not checks.
    op.execute("""
        CREATE FUNCTION crier_authenticate(p_hash bytea, p_now timestamptz)
        RETURNS TABLE (
            api_key_id uuid, workspace_id uuid, member_id uuid, scopes text[],
            expires_at timestamptz, revoked_at timestamptz, role text, permissions jsonb,
            member_removed_at timestamptz, workspace_timezone text, workspace_plan text
        )
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER
        SET search_path = public, pg_catalog
        AS $$
        DECLARE
            k api_keys%ROWTYPE;
        BEGIN
            PERFORM set_config('app.api_key_hash', encode(p_hash, 'hex'), true);
            SELECT * INTO k FROM api_keys WHERE api_keys.secret_hash = p_hash;
            IF NOT FOUND THEN
                RETURN;
            END IF;
            PERFORM crier_enter_workspace(k.workspace_id);
            IF k.revoked_at IS NULL AND (k.last_used_at IS NULL
                    OR k.last_used_at <= p_now - interval '1 minute') THEN
                UPDATE api_keys SET last_used_at = p_now
                WHERE api_keys.workspace_id = k.workspace_id AND api_keys.id = k.id;
            END IF;
            RETURN QUERY
                SELECT k.id, k.workspace_id, k.member_id, k.scopes, k.expires_at, k.revoked_at,
                       m.role, m.permissions, m.removed_at, w.timezone, w.plan

                FROM members m JOIN workspaces w ON w.id = m.workspace_id
                WHERE m.workspace_id = k.workspace_id AND m.id = k.member_id;
        END
        $$
    """)
    # Workers LISTEN on crier_schedule; whoever changes a post's schedule, they hear of it.
    op.execute("""
        CREATE FUNCTION crier_notify_schedule() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('crier_schedule', NEW.workspace_id::text || ':' || NEW.id::text);
            RETURN NULL;
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER posts_schedule_changed
        AFTER INSERT OR UPDATE OF status, publish_at ON posts
        FOR EACH ROW WHEN (NEW.status IN ('scheduled', 'cancelled', 'draft'))
        EXECUTE FUNCTION crier_notify_schedule()
    """)
    # Lock the workspace, then count with a snapshot taken after the lock was granted (a
    # new statement inside the function), so a concurrent scheduler that held the lock is
    # counted. One round trip keeps the lock held as briefly as possible.
    op.execute("""
        CREATE FUNCTION crier_lock_and_count_scheduled(
            p_start timestamptz, p_end timestamptz, p_exclude uuid
        ) RETURNS bigint
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER
        SET search_path = public, pg_catalog
        AS $$
        DECLARE
            n bigint;
        BEGIN
            PERFORM 1 FROM workspaces WHERE id = crier_current_workspace() FOR NO KEY UPDATE;
            SELECT count(*) INTO n FROM posts
            WHERE workspace_id = crier_current_workspace()
              AND status IN ('scheduled', 'queued', 'publishing', 'published', 'failed')
              AND publish_at >= p_start AND publish_at < p_end
              AND id IS DISTINCT FROM p_exclude;
            RETURN n;
        END
        $$
    """)
    op.create_index(
        "ix_posts_scheduled_in_month",
        "posts",
        ["workspace_id", "publish_at"],
        postgresql_where="status IN ('scheduled', 'queued', 'publishing', 'published', 'failed')",
    )


def downgrade() -> None:
    op.drop_index("ix_posts_scheduled_in_month", table_name="posts")
    op.execute("DROP FUNCTION crier_lock_and_count_scheduled(timestamptz, timestamptz, uuid)")

    op.execute("DROP TRIGGER posts_schedule_changed ON posts")
    op.execute("DROP FUNCTION crier_notify_schedule()")
    op.execute("DROP FUNCTION crier_authenticate(bytea, timestamptz)")
    op.execute("DROP FUNCTION crier_enter_workspace(uuid)")
