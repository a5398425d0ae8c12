"""The reviews inbox: what a sync reads of each review, the workspace's change feed, and
each location's sync state.

Nothing wrote reviews before this revision, so the columns every review now needs are
added without defaults. Workers find the locations due for a sync across workspaces as
the scheduler role, which sees when each is due and whether a worker holds it: nothing of
the reviews themselves.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE
from crier.migrations.tenancy import protect

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[datetime]]:
    return [
        sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
        for name in ("created_at", "updated_at")
    ]


def upgrade() -> None:
    for column in (
        sa.Column("sentiment_label", sa.Text(), nullable=True),
        sa.Column("language", sa.Text(), nullable=True),
        sa.Column("reviewer_name", sa.Text(), nullable=True),
        sa.Column("network_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reply", sa.Text(), nullable=True),
        sa.Column("reply_updated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("feed_sequence", sa.BigInteger(), nullable=False),
        sa.Column("seen_in_scan", sa.BigInteger(), server_default="0", nullable=False),
    ):
        op.add_column("reviews", column)
    op.create_check_constraint(
        op.f("ck_reviews_sentiment_label_known"),
        "reviews",
        "sentiment_label IN ('negative', 'neutral', 'positive')",
    )
    op.create_unique_constraint(
        op.f("uq_reviews_workspace_id_feed_sequence"), "reviews", ["workspace_id", "feed_sequence"]
    )
    op.create_index(
        op.f("ix_reviews_workspace_id_social_account_id_reviewed_at"),
        "reviews",
        ["workspace_id", "social_account_id", "reviewed_at"],
    )

    op.create_table(
        "review_feeds",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), server_default="0", nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_review_feeds_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_review_feeds")),
        sa.UniqueConstraint("workspace_id", name=op.f("uq_review_feeds_workspace_id")),
    )
    protect("review_feeds")

    op.create_table(
        "review_syncs",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("social_account_id", sa.Uuid(), nullable=False),
        sa.Column("next_sync_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("watermark", sa.DateTime(timezone=True), nullable=True),
        sa.Column("run_top", sa.DateTime(timezone=True), nullable=True),
        sa.Column("page_token", sa.Text(), nullable=True),
        sa.Column("full_scan", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("scan", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("last_synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("network_total", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
            name=op.f("fk_review_syncs_workspace_id_social_account_id_social_accounts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_review_syncs_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_review_syncs")),
        sa.UniqueConstraint(
            "workspace_id",
            "social_account_id",
            name=op.f("uq_review_syncs_workspace_id_social_account_id"),
        ),
    )
    op.create_index("ix_review_syncs_due", "review_syncs", ["next_sync_at"])
    protect("review_syncs")
    op.execute(
        "GRANT SELECT (workspace_id, social_account_id, next_sync_at, leased_until) "
        f"ON review_syncs TO {SCHEDULER_ROLE}"
    )
    op.execute(
        f"CREATE POLICY scheduler_syncs ON review_syncs FOR SELECT TO {SCHEDULER_ROLE} USING (true)"
    )


def downgrade() -> None:
    op.execute("DROP POLICY scheduler_syncs ON review_syncs")
    op.execute(f"REVOKE ALL ON review_syncs FROM {SCHEDULER_ROLE}")
    op.drop_table("review_syncs")
    op.drop_table("review_feeds")
    op.drop_index(op.f("ix_reviews_workspace_id_social_account_id_reviewed_at"), "reviews")
    op.drop_constraint(op.f("uq_reviews_workspace_id_feed_sequence"), "reviews")
    op.drop_constraint(op.f("ck_reviews_sentiment_label_known"), "reviews")
    for name in (
        "seen_in_scan",
        "feed_sequence",
        "removed_at",
        "reply_updated_at",
        "reply",
        "network_updated_at",
        "reviewer_name",
        "language",
        "sentiment_label",
    ):
        op.drop_column("reviews", name)
