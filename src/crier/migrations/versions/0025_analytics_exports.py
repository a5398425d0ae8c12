"""Analytics exports: a view's or a query's figures written to a CSV, XLSX or PDF file by
the workers, with their progress, a download while the file is kept, and what went wrong.

The scheduler role sees which exports wait for a worker and which files are due to go.

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crier.kit.db.engine import SCHEDULER_ROLE
from crier.migrations.tenancy import protect

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_exports",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *(
            sa.Column(
                name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
            )
            for name in ("created_at", "updated_at")
        ),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="queued", nullable=False),
        sa.Column("view_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("social_account_ids", postgresql.ARRAY(sa.Uuid()), nullable=True),
        sa.Column("platforms", postgresql.ARRAY(sa.Text()), nullable=True),
        sa.Column("metrics", postgresql.ARRAY(sa.Text()), nullable=False),
        sa.Column("first_day", sa.Date(), nullable=False),
        sa.Column("last_day", sa.Date(), nullable=False),
        sa.Column("granularity", sa.Text(), nullable=False),
        sa.Column("comparison", sa.Text(), nullable=True),
        sa.Column("progress", sa.Double(), server_default="0", nullable=False),
        sa.Column("rows_written", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("attempts", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_by", sa.Text(), nullable=True),
        sa.Column("file_path", sa.Text(), nullable=True),
        sa.Column("file_name", sa.Text(), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "format IN ('csv', 'xlsx', 'pdf')", name=op.f("ck_analytics_exports_format_known")
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'ready', 'failed', 'expired')",
            name=op.f("ck_analytics_exports_status_known"),
        ),
        sa.CheckConstraint(
            "granularity IN ('day', 'week', 'month')",
            name=op.f("ck_analytics_exports_granularity_known"),
        ),
        sa.CheckConstraint(
            "comparison IN ('previous_period', 'previous_year')",
            name=op.f("ck_analytics_exports_comparison_known"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_analytics_exports_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_analytics_exports")),
    )
    op.create_index(
        "ix_analytics_exports_waiting",
        "analytics_exports",
        ["created_at"],
        postgresql_where=sa.text("status IN ('queued', 'running')"),
    )
    op.create_index(
        "ix_analytics_exports_kept",
        "analytics_exports",
        ["expires_at"],
        postgresql_where=sa.text("status = 'ready'"),
    )
    protect("analytics_exports")
    op.execute(
        "GRANT SELECT (workspace_id, id, status, leased_until, expires_at, created_at) "
        f"ON analytics_exports TO {SCHEDULER_ROLE}"
    )
    op.execute(
        f"CREATE POLICY scheduler_exports ON analytics_exports FOR SELECT TO {SCHEDULER_ROLE} "
        "USING (true)"
    )


def downgrade() -> None:
    op.execute("DROP POLICY scheduler_exports ON analytics_exports")
    op.execute(f"REVOKE ALL ON analytics_exports FROM {SCHEDULER_ROLE}")
    op.drop_table("analytics_exports")
