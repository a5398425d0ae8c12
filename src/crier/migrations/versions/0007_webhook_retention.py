"""Webhook retention: the scheduler may delete settled webhook events older than two days.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FLOOR = "2 days"
"""Longer than the retry schedule (about 27.6 hours): nothing retryable can go."""


def upgrade() -> None:
    # Only what the purge filters on: payloads stay unreadable to it. Deleting an event
    # deletes its deliveries and their attempts (ON DELETE CASCADE).
    op.execute(f"GRANT SELECT (workspace_id, id, created_at) ON webhook_events TO {SCHEDULER_ROLE}")
    op.execute(f"GRANT DELETE ON webhook_events TO {SCHEDULER_ROLE}")
    # Which event a pending delivery is of, so that no event with a retry to come goes.
    op.execute(f"GRANT SELECT (event_id) ON webhook_deliveries TO {SCHEDULER_ROLE}")
    for command in ("SELECT", "DELETE"):
        op.execute(f"""
            CREATE POLICY scheduler_purges_{command.lower()} ON webhook_events
            FOR {command} TO {SCHEDULER_ROLE}
            USING (created_at < now() - interval '{FLOOR}')
        """)


def downgrade() -> None:
    op.execute("DROP POLICY scheduler_purges_select ON webhook_events")
    op.execute("DROP POLICY scheduler_purges_delete ON webhook_events")
    op.execute(f"REVOKE ALL ON webhook_events FROM {SCHEDULER_ROLE}")
    op.execute(f"REVOKE SELECT (event_id) ON webhook_deliveries FROM {SCHEDULER_ROLE}")  # noqa: S608 - constant names
