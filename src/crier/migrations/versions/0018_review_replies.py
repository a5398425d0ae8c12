"""Replies to reviews: each reply (or its removal) asked of Crier is a row that workers send
to the network, kept with those seen made on the network as the review's reply history;
reply templates; and the permission to reply is named `reviews:reply`.

Reviews show where the last reply asked of Crier stands (`reply_status`). Workers find the
replies due across workspaces as the scheduler role, which sees when each is due and
whether a worker holds one of its review's: nothing of their text.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE
from crier.migrations.tenancy import protect

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[datetime]]:
    return [
        sa.Column(name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False)
        for name in ("created_at", "updated_at")
    ]


def _workspace_key(table: str) -> list[sa.schema.SchemaItem]:
    return [
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f(f"fk_{table}_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    for column in ("reply_status", "reply_error", "reply_error_message"):
        op.add_column("reviews", sa.Column(column, sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_reviews_reply_status_known"), "reviews", "reply_status IN ('pending', 'failed')"
    )

    op.create_table(
        "review_replies",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("review_id", sa.Uuid(), nullable=False),
        sa.Column("action", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("origin", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("requested_by", sa.Uuid(), nullable=True),
        sa.Column("template_id", sa.Uuid(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("leased_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_code", sa.Text(), nullable=True),
        sa.Column("error_message", sa.Text(), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "action IN ('reply', 'delete')", name=op.f("ck_review_replies_action_known")
        ),
        sa.CheckConstraint(
            "origin IN ('crier', 'network')", name=op.f("ck_review_replies_origin_known")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed', 'superseded')",
            name=op.f("ck_review_replies_status_known"),
        ),
        sa.CheckConstraint(
            "(action = 'reply') = (text IS NOT NULL)",
            name=op.f("ck_review_replies_text_for_reply"),
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id", "review_id"],
            ["reviews.workspace_id", "reviews.id"],
            name=op.f("fk_review_replies_workspace_id_review_id_reviews"),
            ondelete="CASCADE",
        ),
        *_workspace_key("review_replies"),
    )
    op.create_index(
        op.f("ix_review_replies_workspace_id_review_id_created_at"),
        "review_replies",
        ["workspace_id", "review_id", "created_at"],
    )
    op.create_index(
        "ix_review_replies_due",
        "review_replies",
        ["next_attempt_at"],
        postgresql_where=sa.text("status = 'pending'"),
    )
    protect("review_replies")
    op.execute(
        "GRANT SELECT (workspace_id, id, review_id, status, next_attempt_at, leased_until) "
        f"ON review_replies TO {SCHEDULER_ROLE}"
    )
    op.execute(
        f"CREATE POLICY scheduler_replies ON review_replies FOR SELECT TO {SCHEDULER_ROLE} "
        "USING (true)"
    )

    op.create_table(
        "review_templates",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        *_timestamps(),
        *_workspace_key("review_templates"),
        sa.UniqueConstraint(
            "workspace_id", "name", name=op.f("uq_review_templates_workspace_id_name")
        ),
    )
    protect("review_templates")
    _rename_permission("reviews:respond", "reviews:reply")


def downgrade() -> None:
    _rename_permission("reviews:reply", "reviews:respond")
    op.drop_table("review_templates")
    op.execute("DROP POLICY scheduler_replies ON review_replies")
    op.execute(f"REVOKE ALL ON review_replies FROM {SCHEDULER_ROLE}")
    op.drop_table("review_replies")
    op.drop_constraint(op.f("ck_reviews_reply_status_known"), "reviews")
    for column in ("reply_error_message", "reply_error", "reply_status"):
        op.drop_column("reviews", column)


def _rename_permission(old: str, new: str) -> None:
    """Rename a permission in every member's grants and denials and every key's scopes."""
    # Across workspaces, as the owner: the tables' policies are lifted for the owner within
    # this migration's transaction only, and nobody else sees the gap.
    op.execute("ALTER TABLE members NO FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE api_keys NO FORCE ROW LEVEL SECURITY")
    names = {"old": old, "new": new}
    renamed = """jsonb_build_object(
        'grant', (SELECT coalesce(jsonb_agg(CASE WHEN p = :old THEN :new ELSE p END), '[]')
                  FROM jsonb_array_elements_text(coalesce(permissions -> 'grant', '[]')) AS p),
        'deny', (SELECT coalesce(jsonb_agg(CASE WHEN p = :old THEN :new ELSE p END), '[]')
                 FROM jsonb_array_elements_text(coalesce(permissions -> 'deny', '[]')) AS p)
    )"""
    op.execute(
        sa.text(
            f"UPDATE members SET permissions = permissions || {renamed} "  # noqa: S608 - constant
            "WHERE (permissions -> 'grant') @> to_jsonb(:old) "
            "OR (permissions -> 'deny') @> to_jsonb(:old)"
        ).bindparams(**names)
    )
    op.execute(
        sa.text(
            "UPDATE api_keys SET scopes = array_replace(scopes, :old, :new) WHERE :old = ANY(scopes)"
        ).bindparams(**names)
    )
    op.execute("ALTER TABLE api_keys FORCE ROW LEVEL SECURITY")
    op.execute("ALTER TABLE members FORCE ROW LEVEL SECURITY")
