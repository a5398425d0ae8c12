"""Cheaper rollups: one unique index on `analytics_snapshots` (by metric, day and account,
with the value in it) serves both the rollup's upsert and the reading of views, in place
of a unique constraint and a reading index; the snapshots' own foreign key to the
workspace goes, the one to their account (which carries `workspace_id`) implying it and
now cascading as it did. And the rollup finds an account's own figures of its days, and
the deliveries published in them, each through an index of their own, without reading
every post's figures beside them or every delivery the workspace ever made.

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNIQUE = "uq_analytics_snapshots_workspace_id_social_account_id_m_e3e9"
TO_ACCOUNT = "fk_analytics_snapshots_workspace_id_social_account_id_s_b31d"
TO_WORKSPACE = "fk_analytics_snapshots_workspace_id_workspaces"


def _to_account(ondelete: str | None) -> None:
    op.drop_constraint(op.f(TO_ACCOUNT), "analytics_snapshots", type_="foreignkey")
    op.create_foreign_key(
        op.f(TO_ACCOUNT),
        "analytics_snapshots",
        "social_accounts",
        ["workspace_id", "social_account_id"],
        ["workspace_id", "id"],
        ondelete=ondelete,
    )


def upgrade() -> None:
    op.create_index(
        "ux_analytics_snapshots_reading",
        "analytics_snapshots",
        ["workspace_id", "metric", "date", "social_account_id"],
        unique=True,
        postgresql_include=["value"],
    )
    op.drop_index("ix_analytics_snapshots_reading", "analytics_snapshots")
    op.drop_constraint(op.f(UNIQUE), "analytics_snapshots", type_="unique")
    op.drop_constraint(op.f(TO_WORKSPACE), "analytics_snapshots", type_="foreignkey")
    _to_account("CASCADE")
    op.create_index(
        "ix_metric_observations_own_time",
        "metric_observations",
        ["workspace_id", "observed_at"],
        postgresql_where=sa.text("delivery_id IS NULL AND day IS NULL"),
    )
    op.create_index(
        "ix_deliveries_published",
        "deliveries",
        ["workspace_id", "published_at"],
        postgresql_where=sa.text("status = 'published'"),
    )


def downgrade() -> None:
    op.drop_index("ix_deliveries_published", "deliveries")
    op.drop_index("ix_metric_observations_own_time", "metric_observations")
    _to_account(None)
    op.create_foreign_key(
        op.f(TO_WORKSPACE),
        "analytics_snapshots",
        "workspaces",
        ["workspace_id"],
        ["id"],
        ondelete="CASCADE",
    )
    op.create_unique_constraint(
        op.f(UNIQUE),
        "analytics_snapshots",
        ["workspace_id", "social_account_id", "metric", "date"],
    )
    op.create_index(
        "ix_analytics_snapshots_reading",
        "analytics_snapshots",
        ["workspace_id", "metric", "date"],
        postgresql_include=["social_account_id", "value"],
    )
    op.drop_index("ux_analytics_snapshots_reading", "analytics_snapshots")
