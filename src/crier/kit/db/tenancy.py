"""The tenant wall's one entry point: the settings Row Level Security policies read.

Each setting is transaction-local (`set_config(..., true)`), so it disappears at commit or
rollback and can never leak into the next transaction on a pooled connection.
"""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

_SET_LOCAL = text("SELECT set_config(:name, :value, true)")


async def enter_workspace(session: AsyncSession, workspace_id: UUID) -> None:
    """Make this transaction see, and write, only the rows of `workspace_id`."""
    await session.execute(_SET_LOCAL, {"name": "app.workspace_id", "value": str(workspace_id)})


async def present_api_key_hash(session: AsyncSession, secret_hash: bytes) -> None:
    """Let this transaction read the one API key whose secret hashes to `secret_hash`.

    Knowing a key's secret is what entitles a caller to its row; this is how a request
    finds its workspace before any workspace context exists.
    """
    await session.execute(_SET_LOCAL, {"name": "app.api_key_hash", "value": secret_hash.hex()})


async def present_user_email(session: AsyncSession, email: str) -> None:
    """Let this transaction find the user with `email` (its id only), to add it as a member."""
    await session.execute(_SET_LOCAL, {"name": "app.user_email", "value": email.lower()})


async def present_workspace_slug(session: AsyncSession, slug: str) -> None:
    """Let this transaction find the workspace named `slug` (operators' commands use slugs)."""
    await session.execute(_SET_LOCAL, {"name": "app.workspace_slug", "value": slug})
