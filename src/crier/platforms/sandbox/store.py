"""What the sandbox platform remembers: accounts, tokens, posts and reviews, in SQLite.

A file keeps them across restarts of `crier sandbox`; tests use memory. SQLite (in WAL mode)
is plenty for one local process and keeps the sandbox independent of Crier's own database,
as a real platform is.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, handle TEXT NOT NULL, created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS tokens (
    token TEXT PRIMARY KEY, kind TEXT NOT NULL, account_id TEXT NOT NULL,
    expires_at REAL, revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS posts (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, idempotency_key TEXT,
    text TEXT NOT NULL, media TEXT NOT NULL, created_at REAL NOT NULL,
    received_at REAL,
    UNIQUE (account_id, idempotency_key)
);
CREATE TABLE IF NOT EXISTS reviews (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, reviewer_name TEXT,
    rating INTEGER NOT NULL, comment TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    reply TEXT, reply_updated_at REAL, change INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS reviews_by_change ON reviews (account_id, updated_at, change);
"""
_REVIEW_COLUMNS = (
    "id, account_id, reviewer_name, rating, comment, created_at, updated_at, reply,"
    " reply_updated_at"
)


@dataclass(frozen=True)
class Token:
    token: str
    kind: str
    account_id: str
    expires_at: float | None
    revoked: bool


@dataclass(frozen=True)
class SandboxPost:
    id: str
    account_id: str
    idempotency_key: str | None
    text: str
    media: list[dict[str, Any]]
    created_at: float
    received_at: float | None = None
    """When the call that made it arrived, before any latency the sandbox was told to add."""


@dataclass(frozen=True)
class SandboxReview:
    """A review of an account's location (every sandbox account is also a location)."""

    id: str
    account_id: str
    reviewer_name: str | None
    rating: int
    comment: str | None
    created_at: float
    updated_at: float
    reply: str | None = None
    reply_updated_at: float | None = None


_UNSET: object = object()


class Store:
    """Accounts, tokens, posts and reviews of the sandbox platform."""

    def __init__(self, path: Path | None) -> None:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(
            str(path) if path else ":memory:", isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(posts)")}
        if "received_at" not in columns:  # a file from before the column
            self._db.execute("ALTER TABLE posts ADD COLUMN received_at REAL")

    def create_account(self, handle: str, now: float) -> str:
        account_id = "sbx_" + secrets.token_hex(8)
        self._db.execute("INSERT INTO accounts VALUES (?, ?, ?)", (account_id, handle, now))
        return account_id

    def account(self, account_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT id, handle, created_at FROM accounts WHERE id = ?", (account_id,)
        ).fetchone()
        return {"id": row[0], "handle": row[1], "created_at": row[2]} if row else None

    def issue_token(self, kind: str, account_id: str, expires_at: float | None) -> str:
        token = f"sbx_{kind[0]}_" + secrets.token_urlsafe(24)
        self._db.execute(
            "INSERT INTO tokens VALUES (?, ?, ?, ?, 0)", (token, kind, account_id, expires_at)
        )
        return token

    def token(self, token: str) -> Token | None:
        row = self._db.execute(
            "SELECT token, kind, account_id, expires_at, revoked FROM tokens WHERE token = ?",
            (token,),
        ).fetchone()
        return Token(row[0], row[1], row[2], row[3], bool(row[4])) if row else None

    def revoke_token(self, token: str) -> None:
        self._db.execute("UPDATE tokens SET revoked = 1 WHERE token = ?", (token,))

    def revoke_account(self, account_id: str) -> int:
        cursor = self._db.execute(
            "UPDATE tokens SET revoked = 1 WHERE account_id = ? AND revoked = 0", (account_id,)
        )
        return cursor.rowcount

    def post_by_key(self, account_id: str, key: str) -> SandboxPost | None:
        row = self._db.execute(
            "SELECT * FROM posts WHERE account_id = ? AND idempotency_key = ?", (account_id, key)
        ).fetchone()
        return _post(row) if row else None

    def get_post(self, post_id: str) -> SandboxPost | None:
        row = self._db.execute("SELECT * FROM posts WHERE id = ?", (post_id,)).fetchone()
        return _post(row) if row else None

    def add_post(
        self,
        account_id: str,
        key: str | None,
        text: str,
        media: list[dict[str, Any]],
        now: float,
        received_at: float | None = None,
    ) -> tuple[SandboxPost, bool]:
        """Store a post, unless this account already sent one with `key`: (post, created)."""
        post_id = "sbp_" + secrets.token_hex(10)
        post = SandboxPost(post_id, account_id, key, text, media, now, received_at)
        inserted = self._db.execute(
            "INSERT INTO posts (id, account_id, idempotency_key, text, media, created_at,"
            " received_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (account_id, idempotency_key) DO NOTHING",
            (post.id, account_id, key, text, json.dumps(media), now, received_at),
        )
        if inserted.rowcount == 0 and key is not None:
            existing = self.post_by_key(account_id, key)
            assert existing is not None
            return existing, False
        return post, True

    def posts(self, account_id: str | None = None) -> list[SandboxPost]:
        if account_id is None:
            rows = self._db.execute("SELECT * FROM posts ORDER BY created_at, id").fetchall()
        else:
            rows = self._db.execute(
                "SELECT * FROM posts WHERE account_id = ? ORDER BY created_at, id", (account_id,)
            ).fetchall()
        return [_post(r) for r in rows]

    def add_review(
        self,
        account_id: str,
        reviewer_name: str | None,
        rating: int,
        comment: str | None,
        now: float,
        reply: str | None = None,
    ) -> SandboxReview:
        review_id = "sbr_" + secrets.token_hex(10)
        self._db.execute(
            f"INSERT INTO reviews ({_REVIEW_COLUMNS}, change) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?,"  # noqa: S608 - constants
            " (SELECT coalesce(max(change), 0) + 1 FROM reviews))",
            (
                review_id,
                account_id,
                reviewer_name,
                rating,
                comment,
                now,
                now,
                reply,
                now if reply is not None else None,
            ),
        )
        found = self.review(review_id)
        assert found is not None
        return found

    def review(self, review_id: str) -> SandboxReview | None:
        row = self._db.execute(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE id = ?",  # noqa: S608 - constants
            (review_id,),
        ).fetchone()
        return SandboxReview(*row) if row else None

    def edit_review(
        self,
        review_id: str,
        now: float,
        *,
        rating: int | None = None,
        comment: object = _UNSET,
        reply: object = _UNSET,
    ) -> SandboxReview | None:
        """Change a review (what is left out stays); it becomes the most recently changed."""
        found = self.review(review_id)
        if found is None:
            return None
        new_reply = found.reply if reply is _UNSET else reply
        self._db.execute(
            "UPDATE reviews SET rating = ?, comment = ?, reply = ?, reply_updated_at = ?,"
            " updated_at = ?, change = (SELECT max(change) + 1 FROM reviews) WHERE id = ?",
            (
                found.rating if rating is None else rating,
                found.comment if comment is _UNSET else comment,
                new_reply,
                found.reply_updated_at if reply is _UNSET else (now if new_reply else None),
                now,
                review_id,
            ),
        )
        return self.review(review_id)

    def remove_review(self, review_id: str) -> bool:
        return self._db.execute("DELETE FROM reviews WHERE id = ?", (review_id,)).rowcount > 0

    def reviews(
        self, account_id: str, offset: int = 0, limit: int = -1
    ) -> tuple[list[SandboxReview], int, float | None]:
        """The account's reviews, most recently changed first, from `offset`: (page, how
        many in all, their average rating)."""
        rows = self._db.execute(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE account_id = ?"  # noqa: S608 - constants
            " ORDER BY updated_at DESC, change DESC LIMIT ? OFFSET ?",
            (account_id, limit, offset),
        ).fetchall()
        total, average = self._db.execute(
            "SELECT count(*), avg(rating) FROM reviews WHERE account_id = ?", (account_id,)
        ).fetchone()
        return [SandboxReview(*r) for r in rows], int(total), average

    def reset(self) -> None:
        self._db.executescript(
            "DELETE FROM posts; DELETE FROM tokens; DELETE FROM accounts; DELETE FROM reviews;"
        )

    def close(self) -> None:
        self._db.close()


def _post(row: tuple[Any, ...]) -> SandboxPost:
    return SandboxPost(row[0], row[1], row[2], row[3], json.loads(row[4]), row[5], row[6])
