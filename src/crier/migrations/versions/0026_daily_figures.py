"""A network's figures of a whole day (Google Business Profile's daily series): each
observation may name the day it is for, and an account has one observation per metric and
day, replaced when the network revises it.

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("metric_observations", sa.Column("day", sa.Date(), nullable=True))
    op.create_index(
        "ux_metric_observations_day",
        "metric_observations",
        ["workspace_id", "day", "social_account_id", "metric"],
        unique=True,
        postgresql_where=sa.text("day IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ux_metric_observations_day", "metric_observations")
    op.drop_column("metric_observations", "day")
