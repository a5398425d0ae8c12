"""The permission catalogue and what each role grants.

A member's effective permissions are those of its role, plus the member's own `grant`
list, minus its `deny` list. A request made with an API key that has scopes gets only the
permissions that are both the member's and in the scopes. `docs/permissions.md` and
`GET /v1/roles` present this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import StrEnum


class Permission(StrEnum):
    WORKSPACE_READ = "workspace:read"
    WORKSPACE_UPDATE = "workspace:update"
    MEMBERS_READ = "members:read"
    MEMBERS_MANAGE = "members:manage"
    MEMBERS_MANAGE_OWNERS = "members:manage_owners"
    API_KEYS_CREATE = "api_keys:create"
    API_KEYS_MANAGE = "api_keys:manage"
    SOCIAL_ACCOUNTS_READ = "social_accounts:read"
    SOCIAL_ACCOUNTS_MANAGE = "social_accounts:manage"
    POSTS_READ = "posts:read"
    POSTS_WRITE = "posts:write"
    POSTS_SCHEDULE = "posts:schedule"
    POSTS_DELETE = "posts:delete"
    MEDIA_READ = "media:read"
    MEDIA_UPLOAD = "media:upload"
    MEDIA_DELETE = "media:delete"
    ANALYTICS_READ = "analytics:read"
    ANALYTICS_EXPORT = "analytics:export"
    REVIEWS_READ = "reviews:read"
    REVIEWS_REPLY = "reviews:reply"
    WEBHOOKS_MANAGE = "webhooks:manage"


DESCRIPTIONS: Mapping[Permission, str] = {
    Permission.WORKSPACE_READ: "Read the workspace, its plan and limits.",
    Permission.WORKSPACE_UPDATE: "Rename the workspace, change its slug or timezone.",
    Permission.MEMBERS_READ: "List members and their roles.",
    Permission.MEMBERS_MANAGE: "Add, change and remove members other than owners.",
    Permission.MEMBERS_MANAGE_OWNERS: "Make members owners, and change or remove owners.",
    Permission.API_KEYS_CREATE: "Create, list and revoke one's own API keys.",
    Permission.API_KEYS_MANAGE: "List and revoke every member's API keys.",
    Permission.SOCIAL_ACCOUNTS_READ: "List connected social accounts.",
    Permission.SOCIAL_ACCOUNTS_MANAGE: "Connect and disconnect social accounts.",
    Permission.POSTS_READ: "Read posts, their targets and deliveries.",
    Permission.POSTS_WRITE: "Create and edit draft posts.",
    Permission.POSTS_SCHEDULE: "Schedule, unschedule, cancel and retry posts.",
    Permission.POSTS_DELETE: "Delete draft posts.",
    Permission.MEDIA_READ: "List and download media.",
    Permission.MEDIA_UPLOAD: "Upload media.",
    Permission.MEDIA_DELETE: "Delete media.",
    Permission.ANALYTICS_READ: "Read analytics; save, change and delete analytics views.",
    Permission.ANALYTICS_EXPORT: "Export analytics as CSV, XLSX or PDF and download the files.",
    Permission.REVIEWS_READ: "Read reviews.",
    Permission.REVIEWS_REPLY: "Reply to reviews; manage reply templates and alert rules.",
    Permission.WEBHOOKS_MANAGE: "Manage webhook endpoints and replay events.",
}


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    EDITOR = "editor"
    CONTRIBUTOR = "contributor"
    VIEWER = "viewer"


P = Permission
_VIEWER = frozenset(
    {
        P.WORKSPACE_READ,
        P.MEMBERS_READ,
        P.API_KEYS_CREATE,
        P.SOCIAL_ACCOUNTS_READ,
        P.POSTS_READ,
        P.MEDIA_READ,
        P.ANALYTICS_READ,
        P.REVIEWS_READ,
    }
)
_CONTRIBUTOR = _VIEWER | {P.POSTS_WRITE, P.MEDIA_UPLOAD}
_EDITOR = _CONTRIBUTOR | {
    P.POSTS_SCHEDULE,
    P.POSTS_DELETE,
    P.MEDIA_DELETE,
    P.ANALYTICS_EXPORT,
    P.REVIEWS_REPLY,
}
_ADMIN = _EDITOR | {
    P.WORKSPACE_UPDATE,
    P.MEMBERS_MANAGE,
    P.API_KEYS_MANAGE,
    P.SOCIAL_ACCOUNTS_MANAGE,
    P.WEBHOOKS_MANAGE,
}
_OWNER = frozenset(Permission)

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.OWNER: _OWNER,
    Role.ADMIN: _ADMIN,
    Role.EDITOR: _EDITOR,
    Role.CONTRIBUTOR: _CONTRIBUTOR,
    Role.VIEWER: _VIEWER,
}


def effective_permissions(
    role: Role | str,
    grant: Iterable[str] = (),
    deny: Iterable[str] = (),
    scopes: Iterable[str] | None = None,
) -> frozenset[Permission]:
    """What a member may do: role + grant - deny, narrowed to the key's scopes if any."""
    allowed = (ROLE_PERMISSIONS[Role(role)] | {Permission(p) for p in grant}) - {
        Permission(p) for p in deny
    }
    if scopes is not None:
        allowed &= {Permission(p) for p in scopes}
    return frozenset(allowed)
