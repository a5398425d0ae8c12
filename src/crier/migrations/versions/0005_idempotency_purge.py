"""Idempotency purge: the scheduler may delete expired idempotency keys, and nothing else of them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Only the columns the purge filters on: stored responses stay unreadable to it.
    op.execute(
        f"GRANT SELECT (workspace_id, id, expires_at) ON idempotency_keys TO {SCHEDULER_ROLE}"
    )
    op.execute(f"GRANT DELETE ON idempotency_keys TO {SCHEDULER_ROLE}")
    # A DELETE with a WHERE must also see its rows: SELECT gets the same narrow policy.
    for command in ("SELECT", "DELETE"):
        op.execute(f"""
            CREATE POLICY scheduler_purges_{command.lower()} ON idempotency_keys
            FOR {command} TO {SCHEDULER_ROLE} USING (expires_at <= now())
        """)


def downgrade() -> None:
    op.execute("DROP POLICY scheduler_purges_select ON idempotency_keys")
    op.execute("DROP POLICY scheduler_purges_delete ON idempotency_keys")

    op.execute(f"REVOKE ALL ON idempotency_keys FROM {SCHEDULER_ROLE}")
