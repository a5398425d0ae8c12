"""Optimistic concurrency: ETags from row versions, and `If-Match` preconditions."""

from __future__ import annotations

from crier.kit.errors import CrierError


class PreconditionRequired(CrierError):
    """This request changes a resource and must say which version it read: send the
    `ETag` of your last read in an `If-Match` header. This is what stops two clients from
    silently overwriting each other's changes."""

    slug = "precondition-required"
    title = "Precondition required"
    status = 428


class PreconditionFailed(CrierError):
    """The resource changed since you read it: the `If-Match` header does not match its
    current `ETag`. Nothing was changed. Fetch the resource again, reapply your change, and
    retry with the new `ETag`."""

    slug = "precondition-failed"
    title = "Precondition failed"
    status = 412


# RFC 9110's If-Match: `*` or a list of entity tags; empty means none was sent (428).
IF_MATCH_PATTERN = r'^(\*|(W/)?"[!#-~]*"( *, *(W/)?"[!#-~]*")*)?$'


def missing_if_match() -> PreconditionRequired:
    """What a change that must name the version it read answers without `If-Match`."""
    return PreconditionRequired("Send If-Match with the ETag from your last read of this resource.")


def etag_of(version: int) -> str:
    """The strong ETag of a resource at `version`."""
    return f'"{version}"'


def require_match(if_match: str | None, version: int) -> None:
    """Raise unless `If-Match` names the current version (or is `*`)."""
    if if_match is None or not if_match.strip():
        raise missing_if_match()
    current = etag_of(version)
    candidates = [tag.strip() for tag in if_match.split(",")]
    # Strong comparison (RFC 9110 13.1.1): weak tags never match.
    if "*" in candidates or current in candidates:
        return
    raise PreconditionFailed(
        f"The resource is now at ETag {current}; yours ({if_match}) is stale.",
        current_etag=current,
    )
