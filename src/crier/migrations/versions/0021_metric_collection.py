"""Metric collection: what workers fetch when (a post's decaying schedule from its receipt,
an account's daily figures), and the raw observations they bring back.

The scheduler role sees when each fetch is due and whether a worker holds it, and which
accounts are active: nothing of what was measured.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE
from crier.migrations.tenancy import protect

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _common(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        *(
            sa.Column(
                name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
            )
            for name in ("created_at", "updated_at")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f(f"fk_{table}_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
            name=op.f(f"fk_{table}_workspace_id_social_account_id_social_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["deliveries.workspace_id", "deliveries.id"],
            name=op.f(f"fk_{table}_workspace_id_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f(f"pk_{table}")),
        sa.Column("social_account_id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=True),
    ]


def upgrade() -> None:
    op.create_table(
        "metric_fetches",
        *_common("metric_fetches"),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("stage", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("next_fetch_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failures", sa.SmallInteger(), server_default="0", nullable=False),
        sa.Column("last_fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint(
            "workspace_id", "delivery_id", name=op.f("uq_metric_fetches_workspace_id_delivery_id")
        ),
    )
    op.create_index(
        "uq_metric_fetches_account",
        "metric_fetches",
        ["workspace_id", "social_account_id"],
        unique=True,
        postgresql_where=sa.text("delivery_id IS NULL"),
    )
    op.create_index(
        "ix_metric_fetches_due",
        "metric_fetches",
        ["next_fetch_at"],
        postgresql_where=sa.text("next_fetch_at IS NOT NULL"),
    )
    protect("metric_fetches")
    op.execute(
        "GRANT SELECT (workspace_id, id, social_account_id, delivery_id, next_fetch_at, "
        f"leased_until) ON metric_fetches TO {SCHEDULER_ROLE}"
    )
    op.execute(
        f"CREATE POLICY scheduler_fetches ON metric_fetches FOR SELECT TO {SCHEDULER_ROLE} "
        "USING (true)"
    )
    # Every active account's own figures are fetched daily, tokens that expire or not.
    op.execute(
        f"CREATE POLICY scheduler_account_metrics ON social_accounts FOR SELECT "
        f"TO {SCHEDULER_ROLE} USING (status = 'active')"
    )

    op.create_table(
        "metric_observations",
        *_common("metric_observations"),
        sa.Column("metric", sa.Text(), nullable=False),
        sa.Column("value", sa.Double(), nullable=False),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index(
        "ix_metric_observations_delivery",
        "metric_observations",
        ["workspace_id", "delivery_id", "metric", "observed_at"],
        postgresql_where=sa.text("delivery_id IS NOT NULL"),
    )
    op.create_index(
        "ix_metric_observations_account_time",
        "metric_observations",
        ["workspace_id", "social_account_id", "observed_at"],
    )
    protect("metric_observations")


def downgrade() -> None:
    op.drop_table("metric_observations")
    op.execute("DROP POLICY scheduler_account_metrics ON social_accounts")
    op.execute("DROP POLICY scheduler_fetches ON metric_fetches")
    op.execute(f"REVOKE ALL ON metric_fetches FROM {SCHEDULER_ROLE}")
    op.drop_table("metric_fetches")
