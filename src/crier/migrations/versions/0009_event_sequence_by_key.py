"""A post's event sequence advanced by its key, whatever the planner knows of the table.

`emit_events` advanced `posts.event_sequence` with an UPDATE joined to the events being
written. With a plan made while the table was small (a prepared statement's plan is kept),
that join scanned every post of the workspace for each event, so writing an event grew
slower with every post. The function below advances one post by its full primary key,
which can only be a lookup of that row.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Runs as the caller, so Row Level Security applies: a post of another workspace is not
    # found, and the function returns NULL for it. PL/pgSQL keeps the statement's plan for
    # the session (a SQL function would plan it at every call).
    op.execute("""
        CREATE FUNCTION crier_advance_event_sequence(p_post uuid, p_events bigint)
        RETURNS bigint
        LANGUAGE plpgsql VOLATILE SECURITY INVOKER
        AS $$
        DECLARE
            last bigint;
        BEGIN
            UPDATE posts SET event_sequence = event_sequence + p_events
            WHERE workspace_id = crier_current_workspace() AND id = p_post
            RETURNING event_sequence INTO last;
            RETURN last;
        END
        $$
    """)


def downgrade() -> None:
    op.execute("DROP FUNCTION crier_advance_event_sequence(uuid, bigint)")
