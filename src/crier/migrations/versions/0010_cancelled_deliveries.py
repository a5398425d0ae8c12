"""Deliveries of a cancelled post read `cancelled`.

A post cancelled once the scheduler had queued it kept deliveries reading `pending`, as
though they were still to be sent. Cancelling now closes them; the ones already closed are
closed here.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_KNOWN = "'pending', 'sending', 'published', 'failed'"


def upgrade() -> None:
    _replace_check(f"status IN ({_KNOWN}, 'cancelled')")
    # Across workspaces, as the owner: the tables' policies are lifted for the owner within
    # this migration's transaction only, and nobody else sees the gap.
    op.execute("ALTER TABLE deliveries NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE posts NO FORCE ROW LEVEL SECURITY")
    op.execute("""
        UPDATE deliveries d SET status = 'cancelled', next_attempt_at = NULL
        FROM posts p
        WHERE p.workspace_id = d.workspace_id AND p.id = d.post_id
          AND p.status = 'cancelled' AND d.status = 'pending'
    """)
    op.execute("ALTER TABLE posts FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE deliveries FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.execute("ALTER TABLE deliveries NO FORCE ROW LEVEL SECURITY")
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'cancelled'")
    op.execute("ALTER TABLE deliveries FORCE ROW LEVEL SECURITY")
    _replace_check(f"status IN ({_KNOWN})")


def _replace_check(condition: str) -> None:
    op.drop_constraint(op.f("ck_deliveries_status_known"), "deliveries", type_="check")
    op.create_check_constraint(op.f("ck_deliveries_status_known"), "deliveries", condition)
