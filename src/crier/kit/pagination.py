"""Cursor pagination in a stable order (by time-ordered id), shared by every list endpoint."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Annotated, Generic, TypeVar
from uuid import UUID

from fastapi import Query
from pydantic import BaseModel, Field

from crier.kit.errors import ValidationFailed, field_error

T = TypeVar("T")

# A cursor is the id of a page's last item, base64url without padding: 22 characters
# (empty is the first page, as if none were sent).
CURSOR_PATTERN = "^([A-Za-z0-9_-]{22})?$"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100


class Page(BaseModel, Generic[T]):
    """One page of a list, oldest first."""

    data: list[T] = Field(description="The items of this page.")
    next_cursor: str | None = Field(
        description="Pass as `cursor` to get the next page; null on the last page."
    )


class PageRequest(BaseModel):
    after: UUID | None
    limit: int


def encode_cursor(last_id: UUID) -> str:
    return base64.urlsafe_b64encode(last_id.bytes).decode().rstrip("=")


def invalid_cursor() -> ValidationFailed:
    """The problem of a `cursor` this API did not return."""
    return ValidationFailed(
        "The cursor is not one this API returned.",
        [field_error(["query", "cursor"], "not a valid cursor", "invalid_cursor")],
    )


def decode_cursor(cursor: str) -> UUID:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return UUID(bytes=raw)
    except (binascii.Error, ValueError) as exc:
        raise invalid_cursor() from exc


async def page_request(
    cursor: Annotated[
        str | None,
        Query(description="`next_cursor` of the previous page.", pattern=CURSOR_PATTERN),
    ] = None,
    limit: Annotated[
        int, Query(ge=1, le=MAX_LIMIT, description="Items per page, at most 100.")
    ] = DEFAULT_LIMIT,
) -> PageRequest:
    """The `cursor` and `limit` query parameters of a list endpoint."""
    return PageRequest(after=decode_cursor(cursor) if cursor else None, limit=limit)


def make_page(
    items: Sequence[T], limit: int, id_of: Callable[[T], UUID]
) -> tuple[list[T], str | None]:
    """Cut a `limit + 1` fetch into one page's items and the cursor of the next page."""
    data = list(items[:limit])
    has_more = len(items) > limit
    return data, (encode_cursor(id_of(data[-1])) if has_more and data else None)
