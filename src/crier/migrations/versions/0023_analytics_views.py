"""Saved analytics views: accounts or platforms, metrics, a range (relative or absolute),
steps and a comparison, read from the snapshots.

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crier.migrations.tenancy import protect

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_views",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *(
            sa.Column(
                name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
            )
            for name in ("created_at", "updated_at")
        ),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("social_account_ids", postgresql.ARRAY(sa.Uuid()), nullable=True),
        sa.Column("platforms", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("metrics", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("relative_range", sa.Text(), nullable=True),
        sa.Column("first_day", sa.Date(), nullable=True),
        sa.Column("last_day", sa.Date(), nullable=True),
        sa.Column("granularity", sa.Text(), server_default="day", nullable=False),
        sa.Column("comparison", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "granularity IN ('day', 'week', 'month')",
            name=op.f("ck_analytics_views_granularity_known"),
        ),
        sa.CheckConstraint(
            "comparison IN ('previous_period', 'previous_year')",
            name=op.f("ck_analytics_views_comparison_known"),
        ),
        sa.CheckConstraint(
            "(relative_range IS NULL) <> (first_day IS NULL AND last_day IS NULL)",
            name=op.f("ck_analytics_views_one_range"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_analytics_views_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_analytics_views")),
        sa.UniqueConstraint(
            "workspace_id", "name", name=op.f("uq_analytics_views_workspace_id_name")
        ),
    )
    protect("analytics_views")


def downgrade() -> None:
    op.drop_table("analytics_views")
