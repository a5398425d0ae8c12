"""Workers find the accounts whose tokens are about to expire, across workspaces.

Tokens were refreshed only when a post for the account was being prepared, so an account
with nothing due let its refresh token lapse, and one whose access was withdrawn was found
out only when its next post came due. The scheduler role may now see which active accounts
have tokens that expire, and when, and who is refreshing them: never the tokens.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from crier.kit.db.engine import SCHEDULER_ROLE

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        "GRANT SELECT (workspace_id, id, status, token_expires_at, refreshing_until) "
        f"ON social_accounts TO {SCHEDULER_ROLE}"
    )
    op.execute(f"""
        CREATE POLICY scheduler_refreshes ON social_accounts FOR SELECT TO {SCHEDULER_ROLE}
        USING (status = 'active' AND token_expires_at IS NOT NULL)
    """)


def downgrade() -> None:
    op.execute("DROP POLICY scheduler_refreshes ON social_accounts")
    op.execute(f"REVOKE ALL ON social_accounts FROM {SCHEDULER_ROLE}")
