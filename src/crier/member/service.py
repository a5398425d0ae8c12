"""Adding, changing and removing members, with the rules that keep a workspace governable."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth import repository as key_repository
from crier.auth.permissions import Permission, Role, effective_permissions
from crier.auth.principal import Principal
from crier.kit.errors import Conflict, NotFound, PermissionDenied
from crier.kit.time import Clock
from crier.member import repository
from crier.member.schemas import Member as MemberOut
from crier.member.schemas import MemberCreate, MemberUpdate, PermissionOverrides
from crier.models import Member
from crier.workspace import plans
from crier.workspace import repository as workspace_repository


class LastOwner(Conflict):
    """A workspace always keeps at least one owner: the last one cannot be removed or given
    another role. Make another member owner first."""

    slug = "last-owner"
    title = "Last owner"


class MemberExists(Conflict):
    """This person is already a member of the workspace; change their role instead."""

    slug = "member-exists"
    title = "Already a member"


def to_schema(member: Member, email: str) -> MemberOut:
    grants = member.permissions or {}
    return MemberOut(
        id=member.id,
        email=email,
        name=member.name,
        role=Role(member.role),
        permissions=PermissionOverrides.model_validate(grants),
        effective_permissions=sorted(
            effective_permissions(member.role, grants.get("grant", ()), grants.get("deny", ()))
        ),
        created_at=member.created_at,
        updated_at=member.updated_at,
    )


async def get_member(session: AsyncSession, member_id: UUID) -> MemberOut:
    found = await repository.get_with_email(session, member_id)
    if found is None:
        raise NotFound("No member with this id in this workspace.")
    return to_schema(*found)


async def list_members(session: AsyncSession, after: UUID | None, limit: int) -> list[MemberOut]:
    return [
        to_schema(m, e) for m, e in await repository.list_members(session, after=after, limit=limit)
    ]


async def add_owner(session: AsyncSession, workspace_id: UUID, email: str, name: str) -> Member:
    """The first member of a new workspace: no caller to check, no limit to reach."""
    user_id = await repository.ensure_user(session, email)
    member = Member(workspace_id=workspace_id, user_id=user_id, name=name, role=Role.OWNER.value)
    session.add(member)
    await session.flush()
    await session.refresh(member)
    return member


async def add_member(session: AsyncSession, principal: Principal, data: MemberCreate) -> MemberOut:
    _check_can_assign(principal, data.role, data.permissions)
    workspace = await workspace_repository.lock(session, principal.workspace_id)
    plans.enforce(workspace.plan, "members", await repository.count_active(session))
    user_id = await repository.ensure_user(session, str(data.email))
    member = await repository.by_user(session, user_id)
    overrides = data.permissions.model_dump(mode="json")
    if member is not None and member.removed_at is None:
        raise MemberExists(f"{data.email} is already a member.", member_id=str(member.id))
    if member is None:
        member = Member(workspace_id=principal.workspace_id, user_id=user_id)
        session.add(member)
    member.name = data.name
    member.role = data.role.value
    member.permissions = overrides
    member.removed_at = None
    await session.flush()
    await session.refresh(member)
    return to_schema(member, str(data.email).lower())


async def update_member(
    session: AsyncSession, principal: Principal, member_id: UUID, data: MemberUpdate
) -> MemberOut:
    member, email = await _get_for_change(session, principal, member_id)
    if data.role is not None or data.permissions is not None:
        _check_can_assign(
            principal,
            data.role or Role(member.role),
            data.permissions or PermissionOverrides(),
        )
    if data.role is not None and data.role != Role.OWNER and member.role == Role.OWNER.value:
        await _ensure_other_owner(session, member)
    if data.name is not None:
        member.name = data.name
    if data.role is not None:
        member.role = data.role.value
    if data.permissions is not None:
        member.permissions = data.permissions.model_dump(mode="json")
    await session.flush()
    await session.refresh(member)
    return to_schema(member, email)


async def remove_member(
    session: AsyncSession, clock: Clock, principal: Principal, member_id: UUID
) -> None:
    """Remove a member and revoke their API keys; posts they wrote keep their author."""
    member, _ = await _get_for_change(session, principal, member_id, removing=True)
    if member.role == Role.OWNER.value:
        await _ensure_other_owner(session, member)
    now = clock.now()
    member.removed_at = now
    await key_repository.revoke_member_keys(session, member.id, now)
    await session.flush()


async def _get_for_change(
    session: AsyncSession, principal: Principal, member_id: UUID, removing: bool = False
) -> tuple[Member, str]:
    found = await repository.get_with_email(session, member_id)
    if found is None:
        raise NotFound("No member with this id in this workspace.")
    member, email = found
    leaving_by_choice = removing and member.id == principal.member_id
    if not leaving_by_choice:
        principal.require(Permission.MEMBERS_MANAGE)
    if member.role == Role.OWNER.value and not leaving_by_choice:
        principal.require(Permission.MEMBERS_MANAGE_OWNERS)
    return member, email


def _check_can_assign(principal: Principal, role: Role, overrides: PermissionOverrides) -> None:
    """No one hands out power they do not hold themselves."""
    if role == Role.OWNER:
        principal.require(Permission.MEMBERS_MANAGE_OWNERS)
    for permission in overrides.grant:
        if not principal.can(permission):
            raise PermissionDenied(
                permission.value,
                f"Only a member who has '{permission.value}' can grant it to another.",
            )


async def _ensure_other_owner(session: AsyncSession, leaving: Member) -> None:
    owners = await repository.lock_owners(session)
    if all(o.id == leaving.id for o in owners):
        raise LastOwner("This is the workspace's last owner; make another member owner first.")
