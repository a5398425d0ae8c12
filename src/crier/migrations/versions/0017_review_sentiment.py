"""Reviews say what their sentiment was scored from: their text or their rating.

Reviews stored before sentiment was scored have none; their locations' next syncs are made
due at once as full scans, which read every review again and score it.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("reviews", sa.Column("sentiment_source", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_reviews_sentiment_source_known"),
        "reviews",
        "sentiment_source IN ('text', 'rating')",
    )
    # Across workspaces, as the owner: the tables' policies are lifted for the owner within
    # this migration's transaction only, and nobody else sees the gap.
    op.execute("ALTER TABLE reviews NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE review_syncs NO FORCE ROW LEVEL SECURITY")
    op.execute("""
        UPDATE review_syncs s
        SET full_scan = true, scan = s.scan + 1, page_token = NULL, run_top = NULL,
            next_sync_at = least(s.next_sync_at, now())
        WHERE NOT s.full_scan AND EXISTS (
            SELECT FROM reviews r
            WHERE r.workspace_id = s.workspace_id AND r.social_account_id = s.social_account_id
              AND r.sentiment IS NULL
        )
    """)
    op.execute("ALTER TABLE review_syncs FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE reviews FORCE ROW LEVEL SECURITY")


def downgrade() -> None:
    op.drop_constraint(op.f("ck_reviews_sentiment_source_known"), "reviews")
    op.drop_column("reviews", "sentiment_source")
