"""The catalogue of delivery error codes: one vocabulary for every platform.

Each failure an adapter reports has one of these codes, whether the attempt may be retried,
and whether the platform may nonetheless have accepted it (then the delivery must be looked
up by its idempotency key before any resend). docs/errors.md lists them for users.
"""

from __future__ import annotations

from enum import StrEnum

from crier.platforms.base import Published


class ErrorCode(StrEnum):
    RATE_LIMITED = "rate_limited"
    PLATFORM_UNAVAILABLE = "platform_unavailable"
    TIMEOUT = "timeout"
    AUTH_EXPIRED = "auth_expired"
    AUTH_REVOKED = "auth_revoked"
    CONTENT_REJECTED = "content_rejected"
    MEDIA_REJECTED = "media_rejected"
    OUTCOME_UNKNOWN = "outcome_unknown"
    INVALID_REQUEST = "invalid_request"
    PLATFORM_NOT_CONFIGURED = "platform_not_configured"
    ACCOUNT_DISCONNECTED = "account_disconnected"


DESCRIPTIONS: dict[ErrorCode, str] = {
    ErrorCode.RATE_LIMITED: "The platform asked us to slow down (429); retried after its "
    "Retry-After.",
    ErrorCode.PLATFORM_UNAVAILABLE: "The platform failed (5xx) or could not be reached; "
    "retried with backoff.",
    ErrorCode.TIMEOUT: "The platform did not answer in time; looked up by idempotency key, "
    "then retried.",
    ErrorCode.AUTH_EXPIRED: "The account's token expired and could not be refreshed; reconnect "
    "the account.",
    ErrorCode.AUTH_REVOKED: "The platform revoked Crier's access to the account; reconnect it.",
    ErrorCode.CONTENT_REJECTED: "The platform refused the content; not retried.",
    ErrorCode.MEDIA_REJECTED: "The platform refused the media; not retried.",
    ErrorCode.OUTCOME_UNKNOWN: "A send was interrupted and its result is not yet known; it is "
    "reconciled with the platform before anything is sent again (on X, nothing is sent while "
    "the look-up cannot be made). Final when the platform can no longer tell (Mastodon "
    "forgets a key after an hour; X is looked up 7 days back): check the account.",
    ErrorCode.INVALID_REQUEST: "The platform refused the request as malformed; not retried.",
    ErrorCode.PLATFORM_NOT_CONFIGURED: "This server has no adapter for the account's platform "
    "(or is not configured for it); not retried.",
    ErrorCode.ACCOUNT_DISCONNECTED: "The account was disconnected from Crier while the post "
    "still targeted it (`DELETE /v1/social-accounts/{id}?force=true`); not retried.",
}

RETRYABLE = frozenset(
    {
        ErrorCode.RATE_LIMITED,
        ErrorCode.PLATFORM_UNAVAILABLE,
        ErrorCode.TIMEOUT,
        ErrorCode.OUTCOME_UNKNOWN,
    }
)


class OrganizationRefused(Exception):
    """The member who consented may not post for the organization asked for: they hold no
    role on it that allows posting, or it does not exist. `allowed` names the ones they may
    post for (vanity names)."""

    def __init__(self, organization: str, allowed: list[str]) -> None:
        super().__init__(f"may not post for {organization}")
        self.organization = organization
        self.allowed = allowed


class PlatformError(Exception):
    """A platform call failed, with a catalogued code."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        may_have_succeeded: bool = False,
        existing: Published | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.may_have_succeeded = may_have_succeeded
        self.existing = existing
        """The post the network already has for this content (LinkedIn's duplicate
        answer names it): the delivery's own, when an earlier attempt may have made it."""

    @property
    def retryable(self) -> bool:
        return self.code in RETRYABLE
