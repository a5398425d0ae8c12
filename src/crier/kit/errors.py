"""Errors as RFC 9457 problem details, each kind with a stable `type`.

Every error the API returns is one of the `CrierError` subclasses below (or a domain's own
subclass). The `type` of a problem is the relative URI `/problems/<slug>`: the same on every
Crier deployment, and resolvable against the API itself, which serves a short explanation
of each kind there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "/problems/"


@dataclass(frozen=True)
class ProblemKind:
    """One documented kind of problem: what `/problems/<slug>` explains."""

    slug: str
    title: str
    status: int
    explanation: str

    @property
    def type_uri(self) -> str:
        return PROBLEM_BASE + self.slug


PROBLEM_KINDS: dict[str, ProblemKind] = {}


def register_problem(slug: str, title: str, status: int, explanation: str) -> ProblemKind:
    """Add a kind to the catalogue served at `/problems`; a slug may be registered once."""
    kind = ProblemKind(slug, title, status, " ".join(explanation.split()))
    existing = PROBLEM_KINDS.get(slug)
    if existing is not None and existing != kind:
        raise ValueError(f"problem slug {slug!r} is registered twice with different meanings")
    PROBLEM_KINDS[slug] = kind
    return kind


class CrierError(Exception):
    """Base of every error Crier reports to a client.

    Subclasses set `slug`, `title`, `status` and a docstring (the explanation served at
    `/problems/<slug>`); instances add a `detail` and any extension members.
    """

    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal error"
    status: ClassVar[int] = 500
    headers: Mapping[str, str] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "slug" in cls.__dict__:
            register_problem(cls.slug, cls.title, cls.status, cls.__doc__ or cls.title)

    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extensions = extensions

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """The RFC 9457 body of this error."""
        return problem_body(
            self.slug, self.title, self.status, self.detail, instance, self.extensions
        )


def problem_body(
    slug: str,
    title: str,
    status: int,
    detail: str,
    instance: str | None = None,
    extensions: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build a problem body; extension members never overwrite the standard ones."""
    body: dict[str, Any] = dict(extensions or {})
    body.update(type=PROBLEM_BASE + slug, title=title, status=status, detail=detail)
    if instance is not None:
        body["instance"] = instance
    return body


register_problem(
    "internal-error",
    "Internal error",
    500,
    """Something failed inside Crier. Nothing was half-done: the request's transaction was
    rolled back. Retrying later is safe for idempotent requests.""",
)


class ValidationFailed(CrierError):
    """The request is malformed or a field is invalid. `errors` lists each failing field with
    its location (`loc`), a message and a machine-readable error kind."""

    slug = "validation-error"
    title = "Validation error"
    status = 422

    def __init__(self, detail: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(detail, errors=errors)


class NotAuthenticated(CrierError):
    """The request carries no valid API key. Send `Authorization: Bearer <key>` with a key
    that exists, has not been revoked and has not expired."""

    slug = "unauthorized"
    title = "Not authenticated"
    status = 401
    headers = {"WWW-Authenticate": 'Bearer realm="crier"'}


class PermissionDenied(CrierError):
    """The caller is authenticated but lacks a permission this request needs. `permission`
    names it. Permissions come from the member's role, adjusted by the member's own
    `permissions` grants and denials, and narrowed by the API key's scopes."""

    slug = "permission-denied"
    title = "Permission denied"
    status = 403

    def __init__(self, permission: str, detail: str | None = None) -> None:
        super().__init__(
            detail or f"This request needs the permission '{permission}'.",
            permission=permission,
        )


class NotFound(CrierError):
    """No such resource in this workspace. Resources of other workspaces answer exactly like
    resources that do not exist."""

    slug = "not-found"
    title = "Not found"
    status = 404


class MethodNotAllowed(CrierError):
    """The resource exists but does not support this HTTP method. `Allow` lists those it
    does."""

    slug = "method-not-allowed"
    title = "Method not allowed"
    status = 405


class Conflict(CrierError):
    """The request conflicts with the current state of the resource."""

    slug = "conflict"
    title = "Conflict"
    status = 409


class PlanLimitExceeded(CrierError):
    """The workspace's plan does not allow this. `limit` names the limit, `limit_value` its
    value on the plan and `plan` the plan; a higher plan raises it."""

    slug = "plan-limit-exceeded"
    title = "Plan limit exceeded"
    status = 403

    def __init__(self, plan: str, limit: str, limit_value: int) -> None:
        super().__init__(
            f"The '{plan}' plan allows {limit_value} {limit.replace('_', ' ')}.",
            plan=plan,
            limit=limit,
            limit_value=limit_value,
        )


def field_error(loc: list[str | int], message: str, kind: str) -> dict[str, Any]:
    """One entry of a validation problem's `errors` list."""
    return {"loc": loc, "message": message, "type": kind}
