"""Deliveries found by their post: every step of sending a post, its deliveries' page and
cancelling it read a post's deliveries, and without this index each of those read every
delivery the workspace ever made.

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_deliveries_post", "deliveries", ["workspace_id", "post_id"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_post", table_name="deliveries")
