"""Faster analytics: each observation of a delivery's count keeps how much it grew since
the one before (`delta`), so that a day's growth is one sum over the day's observations;
and snapshots read by metric and day, for many accounts at once, find each row's account
and value in the index itself.

Revision ID: 0024
Revises: 0023
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("metric_observations", sa.Column("delta", sa.Double(), nullable=True))
    # Across workspaces, as the owner: the table's policy is lifted for the owner within
    # this migration's transaction only, and nobody else sees the gap.
    op.execute("ALTER TABLE metric_observations NO FORCE ROW LEVEL SECURITY")
    op.execute("""
        UPDATE metric_observations o SET delta = o.value - coalesce(p.previous, 0)
        FROM (
            SELECT workspace_id, id, lag(value) OVER (
                PARTITION BY workspace_id, delivery_id, metric ORDER BY observed_at
            ) AS previous
            FROM metric_observations WHERE delivery_id IS NOT NULL
        ) AS p
        WHERE o.workspace_id = p.workspace_id AND o.id = p.id
    """)
    op.execute("ALTER TABLE metric_observations FORCE ROW LEVEL SECURITY")
    op.create_index(
        "ix_analytics_snapshots_reading",
        "analytics_snapshots",
        ["workspace_id", "metric", "date"],
        postgresql_include=["social_account_id", "value"],
    )


def downgrade() -> None:
    op.drop_index("ix_analytics_snapshots_reading", "analytics_snapshots")
    op.drop_column("metric_observations", "delta")
