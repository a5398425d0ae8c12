"""A consent can connect an organization the member manages (a LinkedIn company page)
rather than the member: the state keeps which one was asked for, by its id or vanity name.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("oauth_states", sa.Column("organization", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("oauth_states", "organization")
