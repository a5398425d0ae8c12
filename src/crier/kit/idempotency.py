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
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db import Database
from crier.kit.db.engine import Statement
from crier.kit.errors import Conflict, CrierError
from crier.kit.ids import new_id
from crier.kit.time import Clock
from crier.kit.vault import Vault

Created = TypeVar("Created", bound=BaseModel)

HEADER = "Idempotency-Key"
MAX_KEY_LENGTH = 255
KEY_PATTERN = f"^[ -~]{{1,{MAX_KEY_LENGTH}}}$"
"""1 to 255 printable ASCII characters: the `Idempotency-Key` header's pattern, which the
request's validation applies (422) and the OpenAPI description states."""
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


def fingerprint(method: str, path: str, content: Any) -> str:
    """What makes two requests 'the same': method, path and the validated content."""
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{method} {path}\n{canonical}".encode()).hexdigest()


# The lock is named by workspace and key, so the same key in two workspaces never collides.
_LOCK = text(
    "SELECT pg_try_advisory_xact_lock(hashtextextended("
    "'idempotency:' || CAST(crier_current_workspace() AS text) || ':' || :key, 0)) AS locked"
)
# Sent after the lock, as a statement of its own: its snapshot then sees whatever the
# previous holder of the lock committed.
_STORED = text(
    "SELECT id, fingerprint, response_status, response_headers, response_body, expires_at "
    "FROM idempotency_keys WHERE key = :key"
)
_PURGE = text(
    "DELETE FROM idempotency_keys WHERE (workspace_id, id) IN ("
    "SELECT workspace_id, id FROM idempotency_keys WHERE expires_at <= :now LIMIT :limit)"
)
"""Run as crier_scheduler, across workspaces: its policy lets it delete only rows whose
`expires_at` has passed."""
_FORGET = text("DELETE FROM idempotency_keys WHERE id = :id")
_STORE = text(
    "INSERT INTO idempotency_keys (workspace_id, id, key, fingerprint, response_status, "
    "response_headers, response_body, expires_at) VALUES (crier_current_workspace(), :id, "
    ":key, :fingerprint, :status, CAST(:headers AS jsonb), :body, :expires_at)"
)


def claim_statements(key: str) -> tuple[Statement, Statement]:
    """What a request with `key` sends first, in its workspace: the key's lock, then its
    stored response. `Idempotency.decide` reads their rows."""
    return (_LOCK, {"key": key}), (_STORED, {"key": key})


@dataclass(frozen=True)
class Recorded:
    """The answer to a create, as a plain record: what is sent, and kept under its key to
    be replayed. Endpoints make it (status, headers) and send it; services only pass it on."""

    status: int
    headers: dict[str, str]
    body: str
    """The JSON sent."""
    replayed: bool = False
    """Whether this is a stored answer given again (`Idempotent-Replayed: true`)."""

    @classmethod
    def of(
        cls, status: int, content: BaseModel, headers: Mapping[str, str] | None = None
    ) -> Recorded:
        return cls(status, dict(headers or {}), content.model_dump_json(by_alias=True))


Answer = Callable[[Created], Recorded]
"""How an endpoint answers what a create made (its status and headers)."""


@dataclass
class Idempotency:
    """The idempotency state of one request (a no-op when it carries no key)."""

    session: AsyncSession | None
    """Where `replay_or_claim` and `record` run; None on a pipelined request, which sends
    `claim_statements` itself, reads them with `decide`, and sends `store_statement`."""
    vault: Vault
    clock: Clock
    key: str | None
    _fingerprint: str | None = field(default=None, init=False)

    async def create(
        self,
        request_fingerprint: str,
        make: Callable[[], Awaitable[Created]],
        answer: Answer[Created] | None = None,
    ) -> Recorded:
        """Run a create once per key: replay its stored answer, or make it and store the
        answer (201 with the created resource unless `answer` says otherwise)."""
        replay = await self.replay_or_claim(request_fingerprint)
        if replay is not None:
            return replay
        created = await make()
        return await self.record(answer(created) if answer else Recorded.of(201, created))

    async def replay_or_claim(self, request_fingerprint: str) -> Recorded | None:
        """The stored answer to replay, or None once this request owns the key."""
        if self.key is None:
            return None
        assert self.session is not None
        lock, stored = claim_statements(self.key)
        locked = (await self.session.execute(*lock)).mappings().all()
        rows = (await self.session.execute(*stored)).mappings().all()
        replay, expired = self.decide(request_fingerprint, locked, rows)
        if expired is not None:
            await self.session.execute(*self.forget_statement(expired))
        return replay

    def decide(
        self,
        request_fingerprint: str,
        locked: Sequence[Mapping[Any, Any]],
        stored: Sequence[Mapping[Any, Any]],
    ) -> tuple[Recorded | None, UUID | None]:
        """From the rows of `claim_statements`: the answer to replay (or None when this
        request now owns the key), and the id of an expired record to delete first."""
        if not locked[0]["locked"]:
            raise IdempotencyInFlight(
                "A request with this Idempotency-Key is still being processed."
            )
        found = stored[0] if stored else None
        if found is None or found["expires_at"] <= self.clock.now():
            self._fingerprint = request_fingerprint
            return None, found["id"] if found is not None else None
        if found["fingerprint"] != request_fingerprint:
            raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
        replay = Recorded(
            status=found["response_status"],
            headers=dict(found["response_headers"]),
            body=self.vault.open(found["response_body"]),
            replayed=True,
        )
        return replay, None

    def forget_statement(self, expired: UUID) -> Statement:
        """Deletes the expired record `decide` named, before the key is stored again."""
        return _FORGET, {"id": expired}

    async def record(self, answer: Recorded) -> Recorded:
        """Store `answer` under the key, if the request has one, in this transaction."""
        store = self.store_statement(answer)
        if store is not None:
            assert self.session is not None
            await self.session.execute(*store)
        return answer

    def store_statement(self, answer: Recorded) -> Statement | None:
        """The statement storing `answer` under the key (to send in the transaction that
        makes the change), or None when the request has no key."""
        if self.key is None:
            return None
        assert self._fingerprint is not None, "the key must be claimed first"
        kept = {k: v for k, v in answer.headers.items() if k.lower() in _STORED_HEADERS}
        return (
            _STORE,
            {
                "id": new_id(),
                "key": self.key,
                "fingerprint": self._fingerprint,
                "status": answer.status,
                "headers": json.dumps(kept),
                "body": self.vault.seal(answer.body),
                "expires_at": self.clock.now() + RETENTION,
            },
        )


async def purge_expired(scheduler_db: Database, now: datetime, limit: int = 1000) -> int:
    """Forget stored responses past their retention in every workspace, at most `limit`
    at a time; returns how many went."""
    async with scheduler_db.engine.begin() as conn:
        result = await conn.execute(_PURGE, {"now": now, "limit": limit})
        return int(result.rowcount or 0)
