"""The Bluesky emulator refuses what the reference server refuses, with the same status,
error name and message: each request here goes to both and must get the same answer."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.bluesky import Bluesky
from tests.reference_pds import ReferencePds

CREATED = "2026-01-01T00:00:00.000Z"
BLOB = "bafkreibme22gw2h7y2h7tg2fhqotaqjucnbc24deqo72b6mkl2egezxhvy"


@dataclass
class Target:
    url: str
    account: Callable[[str], tuple[str, str]]
    """A new account with the handle: its DID and an app password."""


@pytest.fixture(params=["emulator", "reference"])
def target(request: pytest.FixtureRequest) -> Target:
    if request.param == "emulator":
        bluesky: Bluesky = request.getfixturevalue("bluesky")
        return Target(bluesky.url, bluesky.account)
    pds: ReferencePds = request.getfixturevalue("pds")

    def account(handle: str) -> tuple[str, str]:
        did, _, app_password = pds.account(handle)
        return did, app_password

    return Target(pds.url, account)


def post(text: str | None = "hi", **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"$type": "app.bsky.feed.post", "createdAt": CREATED, **fields}
    if text is not None:
        record["text"] = text
    return record


def images(*alts: str | None) -> dict[str, Any]:
    blob = {"$type": "blob", "ref": {"$link": BLOB}, "mimeType": "image/png", "size": 10}
    return {
        "$type": "app.bsky.embed.images",
        "images": [{"image": blob} | ({} if alt is None else {"alt": alt}) for alt in alts],
    }


def unique(name: str) -> str:
    return f"{name}{secrets.token_hex(3)}.test"  # the reference server is shared by the suite


async def test_sessions_refuse_a_wrong_password_and_tokens_of_the_wrong_kind(
    target: Target,
) -> None:
    handle = unique("ses")
    did, password = target.account(handle)
    async with httpx.AsyncClient(base_url=f"{target.url}/xrpc/") as client:
        wrong = await client.post(
            "com.atproto.server.createSession",
            json={"identifier": handle, "password": "nope-nope-nope-nope"},
        )
        assert (wrong.status_code, wrong.json()) == (
            401,
            {"error": "AuthenticationRequired", "message": "Invalid identifier or password"},
        )
        session = await client.post(
            "com.atproto.server.createSession", json={"identifier": handle, "password": password}
        )
        assert session.status_code == 200, session.text
        tokens = session.json()
        assert (tokens["did"], tokens["handle"]) == (did, handle)
        write = {"repo": did, "collection": "app.bsky.feed.post", "record": post()}
        answers = {
            "none": await client.post("com.atproto.repo.createRecord", json=write),
            "garbage": await client.post(
                "com.atproto.repo.createRecord", json=write, headers=bearer("abc")
            ),
            "refresh as access": await client.post(
                "com.atproto.repo.createRecord", json=write, headers=bearer(tokens["refreshJwt"])
            ),
            "access as refresh": await client.post(
                "com.atproto.server.refreshSession", headers=bearer(tokens["accessJwt"])
            ),
        }
    assert {k: (a.status_code, a.json()) for k, a in answers.items()} == {
        "none": (401, {"error": "AuthMissing", "message": "Authentication Required"}),
        "garbage": (400, {"error": "InvalidToken", "message": "Token could not be verified"}),
        "refresh as access": (400, {"error": "InvalidToken", "message": "Invalid token type"}),
        "access as refresh": (400, {"error": "InvalidToken", "message": "Invalid token type"}),
    }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_posts_are_checked_as_the_reference_server_checks_them(target: Target) -> None:
    handle = unique("rec")
    did, password = target.account(handle)
    someone, _ = target.account(unique("oth"))
    async with httpx.AsyncClient(base_url=f"{target.url}/xrpc/") as client:
        session = await client.post(
            "com.atproto.server.createSession", json={"identifier": handle, "password": password}
        )
        auth = bearer(session.json()["accessJwt"])

        async def create(record: dict[str, Any], **fields: Any) -> tuple[int, dict[str, Any]]:
            body = {"repo": did, "collection": "app.bsky.feed.post", "record": record} | fields
            answer = await client.post("com.atproto.repo.createRecord", json=body, headers=auth)
            found: dict[str, Any] = answer.json()
            return answer.status_code, {k: found.get(k) for k in ("error", "message")}

        def refused(message: str, error: str = "InvalidRequest") -> tuple[int, dict[str, Any]]:
            return 400, {"error": error, "message": message}

        invalid = "Invalid app.bsky.feed.post record: "
        assert await create(post(), rkey="not-a-tid!") == refused(
            'Invalid record key (got "not-a-tid!") at $.rkey'
        )
        assert await create(post("x" * 301)) == refused(
            invalid + "grapheme too big (maximum 300, got 301) at $.record.text"
        )
        assert await create(post("👩‍👩‍👧" * 200)) == refused(
            invalid + "string too big (maximum 3000, got 3600) at $.record.text"
        )
        assert await create(post(None)) == refused(
            invalid + 'Missing required key "text" at $.record'
        )
        assert await create({"$type": "app.bsky.feed.post", "text": "hi"}) == refused(
            invalid + 'Missing required key "createdAt" at $.record'
        )
        assert await create(post() | {"$type": "app.bsky.feed.like"}) == refused(
            "Invalid $type: expected app.bsky.feed.post, got app.bsky.feed.like"
        )
        assert await create(post(embed=images(None))) == refused(
            invalid + 'Missing required key "alt" at $.record.embed.images[0]'
        )
        assert await create(post(embed=images(""))) == refused(
            f"Could not find blob: {BLOB}", "BlobNotFound"
        )
        assert await create(post(), repo=someone) == (
            401,
            {"error": "AuthenticationRequired", "message": "Authentication Required"},
        )
        assert (await create(post("")))[0] == 200  # empty text is a post
        assert (await create(post(), rkey="3kabcdefghijk"))[0] == 200
        assert await create(post(), rkey="3kabcdefghijk") == (
            500,
            {"error": "InternalServerError", "message": "Internal Server Error"},
        )
        missing = await client.get(
            "com.atproto.repo.getRecord",
            params={"repo": did, "collection": "app.bsky.feed.post", "rkey": "3kabcdefghijz"},
        )
        assert (missing.status_code, missing.json()) == (
            400,
            {
                "error": "RecordNotFound",
                "message": f"Could not locate record: at://{did}/app.bsky.feed.post/3kabcdefghijz",
            },
        )
        blob = await client.post(
            "com.atproto.repo.uploadBlob", content=b"\x89PNG\r\n", headers=auth
        )
        assert (blob.status_code, blob.json()["error"]) == (400, "InvalidRequest")
        unknown = await client.get(
            "com.atproto.identity.resolveHandle", params={"handle": unique("nobody")}
        )
        assert (unknown.status_code, unknown.json()) == (
            400,
            {"error": "InvalidRequest", "message": "Unable to resolve handle"},
        )


async def test_a_spent_refresh_token_is_refused_at_once_by_the_emulator(
    bluesky: Bluesky,
) -> None:
    """The one difference: the reference server still takes a spent refresh token for a
    grace period; the emulator does not, so a client that reuses one is caught."""
    _, password = bluesky.account("grace.test")
    async with httpx.AsyncClient(base_url=f"{bluesky.url}/xrpc/") as client:
        session = await client.post(
            "com.atproto.server.createSession",
            json={"identifier": "grace.test", "password": password},
        )
        refresh = bearer(session.json()["refreshJwt"])
        first = await client.post("com.atproto.server.refreshSession", headers=refresh)
        assert first.status_code == 200, first.text
        again = await client.post("com.atproto.server.refreshSession", headers=refresh)
    assert (again.status_code, again.json()["error"]) == (400, "ExpiredToken")
