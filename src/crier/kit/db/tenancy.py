"""The tenant wall's one entry point: the settings Row Level Security policies read.

The workspace context is written only by the database function `crier_enter_workspace`
(migration 0003), which `enter_workspace` here calls and which `crier_authenticate` calls
when a request presents its key; policies read it through `crier_current_workspace()`.
Every setting is transaction-local (`set_config(..., true)`), so it disappears at commit
or rollback and can never leak into the next transaction on a pooled connection.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncSession

_SET_LOCAL = text("SELECT set_config(:name, :value, true)")


_ENTER = text("SELECT crier_enter_workspace(:workspace_id)")
_ENTER_UNAWAITED = text(
    "SELECT crier_enter_workspace(:workspace_id), set_config('synchronous_commit', 'off', true)"
)


async def enter_workspace(session: AsyncSession, workspace_id: UUID) -> None:
    """Make this transaction see, and write, only the rows of `workspace_id`."""
    await session.execute(*enter_workspace_statement(workspace_id))


def enter_workspace_statement(
    workspace_id: UUID, *, await_commit: bool = True
) -> tuple[TextClause, dict[str, Any]]:
    """`enter_workspace` as a statement for a pipelined transaction (`Database.pipelined`).
    `await_commit=False`: the same statement also lets the transaction's COMMIT return
    before it is on disk (`synchronous_commit` off, for this transaction only)."""
    return (_ENTER if await_commit else _ENTER_UNAWAITED), {"workspace_id": workspace_id}


async def set_local(session: AsyncSession, name: str, value: str) -> None:
    """Set the setting `name` for the rest of this transaction only."""
    await session.execute(_SET_LOCAL, {"name": name, "value": value})


async def present_user_email(session: AsyncSession, email: str) -> None:
    """Let this transaction find the user with `email` (its id only), to add it as a member."""
    await set_local(session, "app.user_email", email.lower())


async def present_workspace_slug(session: AsyncSession, slug: str) -> None:
    """Let this transaction find the workspace named `slug` (operators' commands use slugs)."""
    await set_local(session, "app.workspace_slug", slug)
