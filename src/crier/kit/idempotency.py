"""`Idempotency-Key`: the same create, retried, happens once and answers the same.

A request carrying a key takes a transaction-level advisory lock on (workspace, key). If
another request holds it, this one is `idempotency-in-flight` (409). Under the lock, a stored
result for the key is replayed byte for byte with `Idempotent-Replayed: true`, provided the
request is the same (else `idempotency-key-reused`, 422). Otherwise the request runs, and its
response is stored in the very transaction that makes its change: both commit or neither
does, so a failed attempt leaves the key free for the retry, and a success can never be
performed twice. Stored responses are encrypted (a created API key's secret is in one) and
kept for 24 hours.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar
from uuid import UUID

from fastapi import Response
from pydantic import BaseModel
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.errors import Conflict, CrierError, ValidationFailed, field_error
from crier.kit.time import Clock
from crier.kit.vault import Vault
from crier.models import IdempotencyKey

Created = TypeVar("Created", bound=BaseModel)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
RETENTION = timedelta(hours=24)
REPLAYED_HEADER = "Idempotent-Replayed"
_STORED_HEADERS = ("etag", "location")


class IdempotencyKeyReused(CrierError):
    """This `Idempotency-Key` was already used for a different request in this workspace.
    A key names one request: use a new key for a new request."""

    slug = "idempotency-key-reused"
    title = "Idempotency key reused"
    status = 422


class IdempotencyInFlight(Conflict):
    """A request with this `Idempotency-Key` is still being processed. Retry shortly: you
    will get its result."""

    slug = "idempotency-in-flight"
    title = "Idempotent request in flight"


def validate_key(key: str | None) -> str | None:
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isascii() or not key.isprintable():
        raise ValidationFailed(
            f"{HEADER} must be 1 to {MAX_KEY_LENGTH} printable ASCII characters.",
            [
                field_error(
                    ["header", HEADER],
                    "1 to 255 printable ASCII characters",
                    "invalid_idempotency_key",
                )
            ],
        )
    return key


def fingerprint(method: str, path: str, content: Any) -> str:
    """What makes two requests 'the same': method, path and the validated content."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


@dataclass
class Idempotency:
    """The idempotency state of one request (a no-op when it carries no key)."""

    session: AsyncSession
    vault: Vault
    clock: Clock
    workspace_id: UUID
    key: str | None
    _fingerprint: str | None = field(default=None, init=False)

    async def create(
        self,
        request_fingerprint: str,
        make: Callable[[], Awaitable[Created]],
        headers_of: Callable[[Created], dict[str, str]] | None = None,
        status_code: int = 201,
    ) -> Response:
        """Run a create once per key: replay its stored response, or make it and store it."""
        replay = await self.replay_or_claim(request_fingerprint)
        if replay is not None:
            return replay
        created = await make()
        return self.respond(status_code, created, headers_of(created) if headers_of else None)

    async def replay_or_claim(self, request_fingerprint: str) -> Response | None:
        """The stored response to replay, or None once this request owns the key."""
        if self.key is None:
            return None
        lock_name = f"idempotency:{self.workspace_id}:{self.key}"
        locked = await self.session.scalar(
            select(func.pg_try_advisory_xact_lock(func.hashtextextended(lock_name, 0)))
        )
        if not locked:
            raise IdempotencyInFlight(
                "A request with this Idempotency-Key is still being processed."
            )
        stored = await self.session.scalar(
            select(IdempotencyKey).where(IdempotencyKey.key == self.key)
        )
        if stored is not None and stored.expires_at <= self.clock.now():
            await self.session.execute(delete(IdempotencyKey).where(IdempotencyKey.id == stored.id))
            stored = None
        if stored is None:
            self._fingerprint = request_fingerprint
            return None
        if stored.fingerprint != request_fingerprint:
            raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
        headers = {**stored.response_headers, REPLAYED_HEADER: "true"}
        return Response(
            content=self.vault.open(stored.response_body),
            status_code=stored.response_status,
            headers=headers,
            media_type="application/json",
        )

    def respond(
        self, status_code: int, content: BaseModel, headers: dict[str, str] | None = None
    ) -> Response:
        """Serialise the response, storing it under the key if the request has one."""
        body = content.model_dump_json()
        headers = headers or {}
        if self.key is not None:
            assert self._fingerprint is not None, "replay_or_claim() must run first"
            self.session.add(
                IdempotencyKey(
                    workspace_id=self.workspace_id,
                    key=self.key,
                    fingerprint=self._fingerprint,
                    response_status=status_code,
                    response_headers={
                        k: v for k, v in headers.items() if k.lower() in _STORED_HEADERS
                    },
                    response_body=self.vault.seal(body),
                    expires_at=self.clock.now() + RETENTION,
                )
            )
        return Response(
            content=body, status_code=status_code, headers=headers, media_type="application/json"
        )
