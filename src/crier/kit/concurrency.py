"""Optimistic concurrency: ETags from row versions, and `If-Match` preconditions."""

from __future__ import annotations

from dataclasses import dataclass

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


@dataclass(frozen=True)
class IfMatch:
    """An `If-Match` header, parsed: the entity tags a change may apply to."""

    sent: str
    tags: tuple[str, ...]

    @classmethod
    def parse(cls, header: str | None) -> IfMatch | None:
        """The header's tags; None when it was not sent (an empty one has no tags)."""
        if header is None:
            return None
        return cls(header, tuple(tag.strip() for tag in header.split(",") if tag.strip()))


def require_match(expected: IfMatch | None, version: int) -> None:
    """Raise unless `expected` names the current version (or is `*`)."""
    if expected is None or not expected.tags:
        raise missing_if_match()
    current = etag_of(version)
    # Strong comparison (RFC 9110 13.1.1): weak tags never match.
    if "*" in expected.tags or current in expected.tags:
        return
    raise PreconditionFailed(
        f"The resource is now at ETag {current}; yours ({expected.sent}) is stale.",
        current_etag=current,
    )
