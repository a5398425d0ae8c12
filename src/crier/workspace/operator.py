"""What operators do from the command line: name workspaces by id or slug, issue keys, and
keep the demo workspace of `make run`."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth import keys
from crier.auth.permissions import Permission
from crier.auth.service import authenticate, issue_key
from crier.kit.db import Database, enter_workspace, present_workspace_slug
from crier.kit.errors import NotAuthenticated, NotFound
from crier.kit.time import SystemClock
from crier.models import ApiKey, Member, User, Workspace
from crier.workspace import repository
from crier.workspace.service import NewWorkspace, create_workspace


async def find_workspace(session: AsyncSession, ref: str) -> Workspace:
    """The workspace with id or slug `ref`, entered: the transaction now sees only it."""
    try:
        workspace_id: UUID | None = UUID(ref)
    except ValueError:
        workspace_id = None
    if workspace_id is None:
        await present_workspace_slug(session, ref)
        found = await repository.by_slug(session, ref)
        workspace_id = found.id if found else None
    if workspace_id is not None:
        await enter_workspace(session, workspace_id)
        workspace = await repository.get(session, workspace_id)
        if workspace is not None:
            return workspace
    raise NotFound(f"No workspace with id or slug '{ref}'.")


async def find_member(session: AsyncSession, ref: str | None) -> Member:
    """The member with id or email `ref`, or the workspace's first owner."""
    query = select(Member).join(User, User.id == Member.user_id).where(Member.removed_at.is_(None))
    if ref is None:
        query = query.where(Member.role == "owner")
    else:
        try:
            query = query.where(Member.id == UUID(ref))
        except ValueError:
            query = query.where(User.email == ref.lower())
    member = (await session.execute(query.order_by(Member.id).limit(1))).scalar_one_or_none()
    if member is None:
        raise NotFound(f"No current member '{ref}' in this workspace." if ref else "No owner.")
    return member


async def create_key_for(
    db: Database,
    workspace_ref: str,
    member_ref: str | None,
    name: str,
    scopes: list[Permission] | None,
) -> tuple[Workspace, Member, ApiKey, str]:
    async with db.transaction() as session:
        workspace = await find_workspace(session, workspace_ref)
        member = await find_member(session, member_ref)
        key, secret = await issue_key(session, member, name, scopes)
        return workspace, member, key, secret


@dataclass(frozen=True)
class Demo:
    workspace_id: UUID
    slug: str
    api_key: str
    created: bool


DEMO_FILE = "demo.json"


async def ensure_demo(db: Database, data_dir: Path) -> Demo:
    """The demo workspace of `make run`, created the first time, with a working key.

    The demo key is kept in `<data_dir>/demo.json` (mode 0600) so that every start can print
    it; if it has been revoked, a new one replaces it.
    """
    path = data_dir / DEMO_FILE
    if path.exists():
        saved = json.loads(path.read_text())
        async with db.transaction() as session:
            if await _key_works(session, saved["api_key"]):
                return Demo(UUID(saved["workspace_id"]), saved["slug"], saved["api_key"], False)
        async with db.transaction() as session:
            try:
                workspace = await find_workspace(session, saved["workspace_id"])
            except NotFound:
                workspace = None
            if workspace is not None:
                member = await find_member(session, None)
                _, secret = await issue_key(session, member, "demo (make run)")
                demo = Demo(workspace.id, workspace.slug, secret, False)
                _save(path, demo)
                return demo
    async with db.transaction() as session:
        new: NewWorkspace = await create_workspace(
            session,
            name="Demo",
            timezone="UTC",
            owner_email="demo@example.com",
            owner_name="Demo Owner",
        )
    demo = Demo(new.workspace.id, new.workspace.slug, new.api_key_secret, True)
    _save(path, demo)
    return demo


async def _key_works(session: AsyncSession, secret: str) -> bool:
    """Whether `secret` still authenticates, exactly as a request would check it."""
    if not keys.looks_like_key(secret):
        return False
    try:
        await authenticate(session, SystemClock(), keys.hash_key(secret))
    except NotAuthenticated:
        return False
    return True


def _save(path: Path, demo: Demo) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(
            {"workspace_id": str(demo.workspace_id), "slug": demo.slug, "api_key": demo.api_key},
            out,
        )
