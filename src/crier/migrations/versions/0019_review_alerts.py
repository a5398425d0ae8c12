"""Alert rules on reviews, and the alerts they raised (one per rule and review).

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crier.migrations.tenancy import protect

revision: str = "0019"
down_revision: str | None = "0018"
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
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "review_alert_rules",
        *_common("review_alert_rules"),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("max_rating", sa.SmallInteger(), nullable=True),
        sa.Column("sentiment_below", sa.Float(), nullable=True),
        sa.Column("social_account_ids", postgresql.ARRAY(sa.Uuid()), nullable=True),
        sa.Column("enabled", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("active_from", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "max_rating IS NOT NULL OR sentiment_below IS NOT NULL",
            name=op.f("ck_review_alert_rules_has_condition"),
        ),
        sa.CheckConstraint(
            "max_rating BETWEEN 1 AND 5", name=op.f("ck_review_alert_rules_max_rating_range")
        ),
        sa.CheckConstraint(
            "sentiment_below BETWEEN -1 AND 1",
            name=op.f("ck_review_alert_rules_sentiment_below_range"),
        ),
        sa.UniqueConstraint(
            "workspace_id", "name", name=op.f("uq_review_alert_rules_workspace_id_name")
        ),
    )
    protect("review_alert_rules")
    op.create_table(
        "review_alerts",
        *_common("review_alerts"),
        sa.Column("rule_id", sa.Uuid(), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id", "rule_id"],
            ["review_alert_rules.workspace_id", "review_alert_rules.id"],
            name=op.f("fk_review_alerts_workspace_id_rule_id_review_alert_rules"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "review_id"],
            ["reviews.workspace_id", "reviews.id"],
            name=op.f("fk_review_alerts_workspace_id_review_id_reviews"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "workspace_id",
            "rule_id",
            "review_id",
            name=op.f("uq_review_alerts_workspace_id_rule_id_review_id"),
        ),
    )
    op.create_index(
        op.f("ix_review_alerts_workspace_id_review_id"),
        "review_alerts",
        ["workspace_id", "review_id"],
    )
    protect("review_alerts")


def downgrade() -> None:
    op.drop_table("review_alerts")
    op.drop_table("review_alert_rules")
