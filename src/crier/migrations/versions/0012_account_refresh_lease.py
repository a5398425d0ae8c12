"""Social accounts carry a short lease on refreshing their tokens.

Networks that rotate refresh tokens (the sandbox, X, Bluesky) accept each one once. Two
workers preparing posts for one account at once would both spend it; the second would be
refused and the account wrongly marked expired. `refreshing_until` lets one worker at a
time refresh an account's tokens; it lapses by itself if that worker dies.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "social_accounts",
        sa.Column("refreshing_until", sa.DateTime(timezone=True), nullable=True),
    )


def downgrade() -> None:
    op.drop_column("social_accounts", "refreshing_until")
