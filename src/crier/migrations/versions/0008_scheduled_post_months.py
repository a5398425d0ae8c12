"""Scheduled posts counted per month as they change, instead of at every scheduling.

The monthly plan limit used to lock the workspace and count its month's posts on every
scheduling, holding the lock until commit: schedulers of one workspace queued behind each
other, and each count grew with the month. Now `scheduled_post_months` holds the count of
each month (in the workspace's timezone), kept by deferred triggers on `posts` that run at
commit: a transaction holds the month's row only while it commits, and checks the limit its
caller set (`crier.scheduled_posts_per_month`) there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crier.migrations import tenancy

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTED = "('scheduled', 'queued', 'publishing', 'published', 'failed')"
"""The statuses that use a slot of the month: every post given a time to publish."""


def upgrade() -> None:
    op.create_table(
        "scheduled_post_months",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("month_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("scheduled", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_scheduled_post_months_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_scheduled_post_months")),
        sa.UniqueConstraint(
            "workspace_id",
            "month_start",
            name=op.f("uq_scheduled_post_months_workspace_id_month_start"),
        ),
    )
    tenancy.protect("scheduled_post_months")

    # Runs at commit, once per post that entered or left a month (or moved between two).
    # KEY SHARE on the workspace: a change of timezone (which recounts every month) takes
    # FOR UPDATE, so it waits for committing schedulers and they wait for it, and each
    # reads the timezone the other left.
    op.execute(f"""
        CREATE FUNCTION crier_count_scheduled() RETURNS trigger
        LANGUAGE plpgsql SECURITY INVOKER SET search_path = public, pg_catalog
        AS $$
        DECLARE
            zone text;
            n integer;
            quota integer;
        BEGIN
            SELECT timezone INTO zone FROM workspaces
            WHERE id = COALESCE(NEW.workspace_id, OLD.workspace_id) FOR KEY SHARE;
            IF TG_OP <> 'INSERT' AND OLD.status IN {COUNTED} THEN
                UPDATE scheduled_post_months
                SET scheduled = scheduled - 1, updated_at = now()
                WHERE workspace_id = OLD.workspace_id
                  AND month_start = date_trunc('month', OLD.publish_at, zone);
            END IF;
            IF TG_OP <> 'DELETE' AND NEW.status IN {COUNTED} THEN
                INSERT INTO scheduled_post_months AS m (workspace_id, id, month_start, scheduled)
                VALUES (
                    NEW.workspace_id, crier_uuid7(), date_trunc('month', NEW.publish_at, zone), 1
                )
                ON CONFLICT (workspace_id, month_start)
                DO UPDATE SET scheduled = m.scheduled + 1, updated_at = now()
                RETURNING m.scheduled INTO n;
                quota := NULLIF(current_setting('crier.scheduled_posts_per_month', true), '');
                IF n > quota THEN
                    RAISE EXCEPTION USING
                        ERRCODE = 'check_violation',
                        CONSTRAINT = 'scheduled_posts_per_month',
                        MESSAGE = format('%s posts would be scheduled in the month of %s; '
                                         'the limit is %s', n, NEW.publish_at, quota);
                END IF;
            END IF;
            RETURN NULL;
        END
        $$
    """)  # noqa: S608 - constants only
    in_month = f"NEW.status IN {COUNTED}"
    op.execute(f"""
        CREATE CONSTRAINT TRIGGER posts_count_inserted AFTER INSERT ON posts
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN ({in_month}) EXECUTE FUNCTION crier_count_scheduled()
    """)
    op.execute(f"""
        CREATE CONSTRAINT TRIGGER posts_count_changed AFTER UPDATE OF status, publish_at ON posts
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (
            (OLD.status IN {COUNTED}) <> ({in_month})
            OR ({in_month} AND OLD.publish_at IS DISTINCT FROM NEW.publish_at)
        ) EXECUTE FUNCTION crier_count_scheduled()
    """)
    op.execute(f"""
        CREATE CONSTRAINT TRIGGER posts_count_deleted AFTER DELETE ON posts
        DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
        WHEN (OLD.status IN {COUNTED}) EXECUTE FUNCTION crier_count_scheduled()
    """)
    # The current workspace's months counted afresh: after its timezone changed.
    op.execute(f"""
        CREATE FUNCTION crier_recount_scheduled() RETURNS void
        LANGUAGE sql VOLATILE SECURITY INVOKER SET search_path = public, pg_catalog
        AS $$
            DELETE FROM scheduled_post_months WHERE workspace_id = crier_current_workspace();
            INSERT INTO scheduled_post_months (workspace_id, id, month_start, scheduled)
            SELECT p.workspace_id, crier_uuid7(), date_trunc('month', p.publish_at, w.timezone),
                   count(*)
            FROM posts p JOIN workspaces w ON w.id = p.workspace_id
            WHERE p.workspace_id = crier_current_workspace() AND p.status IN {COUNTED}
            GROUP BY p.workspace_id, date_trunc('month', p.publish_at, w.timezone);
        $$
    """)  # noqa: S608 - constants only
    _recount_every_workspace()
    op.execute("DROP FUNCTION crier_lock_and_count_scheduled(timestamptz, timestamptz, uuid)")
    op.drop_index("ix_posts_scheduled_in_month", table_name="posts")


def _recount_every_workspace() -> None:
    """The tenant wall binds the owner too; each workspace is counted from inside it."""
    op.execute("""
        DO $$
        DECLARE
            w uuid;
        BEGIN
            ALTER TABLE workspaces NO FORCE ROW LEVEL SECURITY;
            FOR w IN SELECT id FROM workspaces LOOP
                PERFORM set_config('app.workspace_id', w::text, true);
                PERFORM crier_recount_scheduled();
            END LOOP;
            PERFORM set_config('app.workspace_id', '', true);
            ALTER TABLE workspaces FORCE ROW LEVEL SECURITY;
        END
        $$
    """)


def downgrade() -> None:
    op.create_index(
        "ix_posts_scheduled_in_month",
        "posts",
        ["workspace_id", "publish_at"],
        postgresql_where=f"status IN {COUNTED}",
    )
    op.execute(f"""
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
              AND status IN {COUNTED}
              AND publish_at >= p_start AND publish_at < p_end
              AND id IS DISTINCT FROM p_exclude;
            RETURN n;
        END
        $$
    """)  # noqa: S608 - constants only
    for trigger in ("posts_count_inserted", "posts_count_changed", "posts_count_deleted"):
        op.execute(f"DROP TRIGGER {trigger} ON posts")
    op.execute("DROP FUNCTION crier_recount_scheduled()")
    op.execute("DROP FUNCTION crier_count_scheduled()")
    op.drop_table("scheduled_post_months")
