"""Posts: cancellation, media links with an exact usage count; media metadata; idempotency keys.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 00:41:37.900782
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crier.migrations import tenancy

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "idempotency_keys",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.Text(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=False),
        sa.Column("response_headers", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("response_body", sa.LargeBinary(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_idempotency_keys_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_idempotency_keys")),
        sa.UniqueConstraint(
            "workspace_id", "key", name=op.f("uq_idempotency_keys_workspace_id_key")
        ),
    )
    op.create_table(
        "post_media",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("post_id", sa.Uuid(), nullable=False),
        sa.Column("media_id", sa.Uuid(), nullable=False),
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
        sa.ForeignKeyConstraint(
            ["workspace_id", "media_id"],
            ["media_assets.workspace_id", "media_assets.id"],
            name=op.f("fk_post_media_workspace_id_media_id_media_assets"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "post_id"],
            ["posts.workspace_id", "posts.id"],
            name=op.f("fk_post_media_workspace_id_post_id_posts"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_post_media_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_post_media")),
        sa.UniqueConstraint(
            "workspace_id",
            "post_id",
            "media_id",
            name=op.f("uq_post_media_workspace_id_post_id_media_id"),
        ),
    )
    op.create_index("ix_post_media_media", "post_media", ["workspace_id", "media_id"], unique=False)
    op.add_column("media_assets", sa.Column("filename", sa.Text(), nullable=True))
    op.add_column("media_assets", sa.Column("sha256", sa.Text(), nullable=False, server_default=""))
    op.alter_column("media_assets", "sha256", server_default=None)
    op.add_column("media_assets", sa.Column("width", sa.Integer(), nullable=True))
    op.add_column("media_assets", sa.Column("height", sa.Integer(), nullable=True))
    op.add_column(
        "media_assets",
        sa.Column(
            "variants", postgresql.JSONB(astext_type=sa.Text()), server_default="[]", nullable=False
        ),
    )
    op.add_column("posts", sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("posts", sa.Column("cancelled_by", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_posts_workspace_id_cancelled_by_members"),
        "posts",
        "members",
        ["workspace_id", "cancelled_by"],
        ["workspace_id", "id"],
    )
    op.create_index(
        "ix_post_targets_account", "post_targets", ["workspace_id", "social_account_id"]
    )
    tenancy.protect("idempotency_keys")
    tenancy.protect("post_media")
    _count_media_usage()


def _count_media_usage() -> None:
    """`media_assets.usage_count` follows `post_media` in the same statement, whoever writes."""
    op.execute("""
        CREATE FUNCTION crier_count_media_usage() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'INSERT' THEN
                UPDATE media_assets SET usage_count = usage_count + 1
                WHERE workspace_id = NEW.workspace_id AND id = NEW.media_id;
            ELSE
                UPDATE media_assets SET usage_count = usage_count - 1
                WHERE workspace_id = OLD.workspace_id AND id = OLD.media_id;
            END IF;
            RETURN NULL;
        END
        $$
    """)
    op.execute("""
        CREATE TRIGGER post_media_usage AFTER INSERT OR DELETE ON post_media
        FOR EACH ROW EXECUTE FUNCTION crier_count_media_usage()
    """)


def downgrade() -> None:
    op.drop_index("ix_post_targets_account", table_name="post_targets")
    op.drop_constraint(
        op.f("fk_posts_workspace_id_cancelled_by_members"), "posts", type_="foreignkey"
    )
    op.drop_column("posts", "cancelled_by")
    op.drop_column("posts", "cancelled_at")
    op.drop_column("media_assets", "variants")
    op.drop_column("media_assets", "height")
    op.drop_column("media_assets", "width")
    op.drop_column("media_assets", "sha256")
    op.drop_column("media_assets", "filename")
    op.drop_index("ix_post_media_media", table_name="post_media")
    op.drop_table("post_media")
    op.drop_table("idempotency_keys")
    op.execute("DROP FUNCTION crier_count_media_usage()")
