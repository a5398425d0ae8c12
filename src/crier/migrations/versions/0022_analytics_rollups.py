"""Analytics rollups: when each workspace's days are next aggregated into
`analytics_snapshots` (after its local midnight), how far they are, and which earlier days
late observations touched.

The scheduler role sees when each rollup is due and whether a worker holds it.

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE
from crier.migrations.tenancy import protect

revision: str = "0022"
down_revision: str | None = "0021"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_rollups",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *(
            sa.Column(
                name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
            )
            for name in ("created_at", "updated_at")
        ),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rebuilt_through", sa.Date(), nullable=True),
        sa.Column("dirty_from", sa.Date(), nullable=True),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_analytics_rollups_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_analytics_rollups")),
        sa.UniqueConstraint("workspace_id", name=op.f("uq_analytics_rollups_workspace_id")),
    )
    op.create_index("ix_analytics_rollups_due", "analytics_rollups", ["next_run_at"])
    protect("analytics_rollups")
    op.execute(
        "GRANT SELECT (workspace_id, next_run_at, leased_until) "
        f"ON analytics_rollups TO {SCHEDULER_ROLE}"
    )
    op.execute(
        f"CREATE POLICY scheduler_rollups ON analytics_rollups FOR SELECT TO {SCHEDULER_ROLE} "
        "USING (true)"
    )
    op.create_index(
        "ix_metric_observations_time", "metric_observations", ["workspace_id", "observed_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_metric_observations_time", "metric_observations")
    op.execute("DROP POLICY scheduler_rollups ON analytics_rollups")
    op.execute(f"REVOKE ALL ON analytics_rollups FROM {SCHEDULER_ROLE}")
    op.drop_table("analytics_rollups")
