"""Deliveries say whether their last attempt may have reached the platform.

`uncertain` is set when an attempt begins and cleared by its answer, unless the answer
leaves the outcome open (a timeout after sending, a connection lost mid-call, a server
error after the platform may have stored the post). An uncertain delivery is looked up on
the platform by its idempotency key before anything is sent again; a certain failure (the
connection was refused, the platform said no) is simply sent again. Deliveries in flight at
upgrade time are taken as uncertain where they were before: an attempt left open, or a
timeout, interrupted send or platform failure.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "deliveries",
        sa.Column("uncertain", sa.Boolean(), server_default=sa.false(), nullable=False),
    )
    # Across workspaces, as the owner, within this migration's transaction only.
    op.execute("ALTER TABLE deliveries NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE delivery_attempts NO FORCE ROW LEVEL SECURITY")
    op.execute("""
        UPDATE deliveries d SET uncertain = true
        WHERE d.status IN ('pending', 'sending')
          AND (
              (d.attempts > 0
               AND d.error_code IN ('timeout', 'outcome_unknown', 'platform_unavailable'))
              OR EXISTS (
                  SELECT 1 FROM delivery_attempts a
                  WHERE a.workspace_id = d.workspace_id AND a.delivery_id = d.id
                    AND a.outcome = 'sending'
              )
          )
    """)
    op.execute("ALTER TABLE delivery_attempts FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE deliveries FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.drop_column("deliveries", "uncertain")
