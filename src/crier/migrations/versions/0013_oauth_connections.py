"""OAuth connections: the states of consents under way, the apps Crier registers on the
networks that want one per server, and what an account needs of its own server.

- `oauth_states` (a tenant table): one row per connect started, with its PKCE verifier
  sealed; single-use (`used_at`), bound to the workspace and the member who started it.
- `platform_apps`: the app Crier registered on one server of a network (a Mastodon
  instance), reused by every workspace. Not tenant data: the application may read and add
  them, never change them; the client secret is sealed.
- `social_accounts.server_url` (the account's own server, for networks with many),
  `content_limits` (what that server allows, read when connecting), `app_id`,
  `last_refreshed_at` and `reconnect_by` (when a network's grant ends for good).
- `media_assets.alt_text`: the description networks show to people who cannot see it.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from crier.kit.db.engine import APP_ROLE
from crier.migrations import tenancy

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column[object]]:
    return [
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
    ]


def upgrade() -> None:
    op.create_table(
        "platform_apps",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("server_url", sa.Text(), nullable=False),
        sa.Column("redirect_uri", sa.Text(), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("client_id", sa.Text(), nullable=False),
        sa.Column("client_secret", sa.LargeBinary(), nullable=False),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_platform_apps")),
        sa.UniqueConstraint(
            "platform",
            "server_url",
            "redirect_uri",
            "scopes",
            name=op.f("uq_platform_apps_platform_server_url_redirect_uri_scopes"),
        ),
    )
    op.execute(f"GRANT SELECT, INSERT ON platform_apps TO {APP_ROLE}")

    op.create_table(
        "oauth_states",
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("member_id", sa.Uuid(), nullable=False),
        sa.Column("platform", sa.Text(), nullable=False),
        sa.Column("secret_hash", sa.LargeBinary(), nullable=False),
        sa.Column("code_verifier", sa.LargeBinary(), nullable=False),
        sa.Column("redirect_to", sa.Text(), nullable=True),
        sa.Column("server_url", sa.Text(), nullable=True),
        sa.Column("app_id", sa.Uuid(), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_oauth_states_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["app_id"],
            ["platform_apps.id"],
            name=op.f("fk_oauth_states_app_id_platform_apps"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "id", name=op.f("pk_oauth_states")),
        sa.UniqueConstraint(
            "workspace_id", "secret_hash", name=op.f("uq_oauth_states_workspace_id_secret_hash")
        ),
    )
    tenancy.protect("oauth_states")

    op.add_column("social_accounts", sa.Column("server_url", sa.Text(), nullable=True))
    op.add_column(
        "social_accounts",
        sa.Column("content_limits", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column("social_accounts", sa.Column("app_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        op.f("fk_social_accounts_app_id_platform_apps"),
        "social_accounts",
        "platform_apps",
        ["app_id"],
        ["id"],
    )
    op.add_column(
        "social_accounts",
        sa.Column("last_refreshed_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.add_column(
        "social_accounts", sa.Column("reconnect_by", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("media_assets", sa.Column("alt_text", sa.Text(), nullable=True))
    # Reconnecting finds the account by its identity on the network.
    op.create_index(
        op.f("ix_social_accounts_workspace_id_platform_external_id"),
        "social_accounts",
        ["workspace_id", "platform", "external_id"],
    )


def downgrade() -> None:
    op.drop_column("media_assets", "alt_text")
    op.drop_index(
        op.f("ix_social_accounts_workspace_id_platform_external_id"), table_name="social_accounts"
    )
    for column in ("reconnect_by", "last_refreshed_at"):
        op.drop_column("social_accounts", column)
    op.drop_constraint(
        op.f("fk_social_accounts_app_id_platform_apps"), "social_accounts", type_="foreignkey"
    )
    for column in ("app_id", "content_limits", "server_url"):
        op.drop_column("social_accounts", column)
    op.drop_table("oauth_states")
    op.drop_table("platform_apps")
