"""Workers' heartbeats: each worker says every second that it is alive. One whose
heartbeat has gone quiet is taken for dead, and the posts it held that are not being sent
pass to another worker at once, without waiting for their leases to run out.

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE

revision: str = "0029"
down_revision: str | None = "0028"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "scheduler_workers",
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_workers")),
    )
    op.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON scheduler_workers TO {SCHEDULER_ROLE}")


def downgrade() -> None:
    op.execute(f"REVOKE ALL ON scheduler_workers FROM {SCHEDULER_ROLE}")
    op.drop_table("scheduler_workers")
