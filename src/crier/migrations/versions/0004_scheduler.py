"""Scheduler: deliveries and their attempts, post leases, and the scheduler's narrow role.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE
from crier.migrations import tenancy

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("post_target_id", sa.Uuid(), nullable=False),
        sa.Column("social_account_id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("attempts_allowed", sa.Integer(), server_default="3", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("external_id", sa.Text(), nullable=True),
        sa.Column("permalink", sa.Text(), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'published', 'failed')",
            name=op.f("ck_deliveries_status_known"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "post_id"],
            ["posts.workspace_id", "posts.id"],
            name=op.f("fk_deliveries_workspace_id_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "post_target_id"],
            ["post_targets.workspace_id", "post_targets.id"],
            name=op.f("fk_deliveries_workspace_id_post_target_id_post_targets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "social_account_id"],
            ["social_accounts.workspace_id", "social_accounts.id"],
            name=op.f("fk_deliveries_workspace_id_social_account_id_social_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_deliveries_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint(
            "workspace_id", "post_target_id", name=op.f("uq_deliveries_workspace_id_post_target_id")
        ),
    )
    op.create_table(
        "delivery_attempts",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.SmallInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.Text(), server_default="sending", nullable=False),
        sa.Column("http_status", sa.SmallInteger(), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "outcome IN ('sending', 'published', 'retrying', 'failed', 'unknown')",
            name=op.f("ck_delivery_attempts_outcome_known"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "delivery_id"],
            ["deliveries.workspace_id", "deliveries.id"],
            name=op.f("fk_delivery_attempts_workspace_id_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_delivery_attempts_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_delivery_attempts")),
        sa.UniqueConstraint(
            "workspace_id",
            "delivery_id",
            "number",
            name=op.f("uq_delivery_attempts_workspace_id_delivery_id_number"),
        ),
    )
    op.add_column("posts", sa.Column("lease_owner", sa.Text(), nullable=True))
    op.add_column("posts", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(
        "ix_posts_leases",
        "posts",
        ["lease_expires_at"],
        unique=False,
        postgresql_where="status IN ('queued', 'publishing')",
    )
    tenancy.protect("deliveries")
    tenancy.protect("delivery_attempts")
    _scheduler_role()


def _scheduler_role() -> None:
    """The one role that sees across workspaces, and only this much: which posts are in
    flight, when, and who holds them. It claims due posts; everything else a worker does to
    a post happens as crier_app inside that post's workspace."""
    tenancy.create_role(SCHEDULER_ROLE)
    op.execute(
        f"GRANT SELECT (workspace_id, id, status, publish_at, locked_at, lease_owner, "
        f"lease_expires_at, version) ON posts TO {SCHEDULER_ROLE}"
    )
    op.execute(
        f"GRANT UPDATE (status, locked_at, lease_owner, lease_expires_at, version, updated_at) "
        f"ON posts TO {SCHEDULER_ROLE}"
    )
    op.execute(f"""
        CREATE POLICY scheduler_claims ON posts TO {SCHEDULER_ROLE}
        USING (status IN ('scheduled', 'queued', 'publishing'))
        WITH CHECK (status IN ('scheduled', 'queued', 'publishing'))
    """)


def downgrade() -> None:
    op.execute("DROP POLICY scheduler_claims ON posts")
    op.execute(f"REVOKE ALL ON posts FROM {SCHEDULER_ROLE}")
    op.drop_index(
        "ix_posts_leases", table_name="posts", postgresql_where="status IN ('queued', 'publishing')"
    )
    op.drop_column("posts", "lease_expires_at")
    op.drop_column("posts", "lease_owner")
    op.drop_table("delivery_attempts")
    op.drop_table("deliveries")
