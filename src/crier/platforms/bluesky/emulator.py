"""A Bluesky server (an AT Protocol PDS) on loopback: the XRPC methods Crier uses, and
nothing else.

Written from the lexicons (com.atproto.server.createSession, refreshSession,
deleteSession; com.atproto.repo.uploadBlob, createRecord, applyWrites, getRecord;
com.atproto.identity.resolveHandle; app.bsky.feed.getPosts; app.bsky.actor.getProfile;
app.bsky.feed.post,
app.bsky.embed.images, app.bsky.richtext.facet) and from what the reference server does
(docs/platforms.md): strict where they are strict.

- Sessions are JWTs: access tokens live 2 hours, refresh tokens 90 days and are spent when
  used (a spent one answers 400 `ExpiredToken`). An expired access token is answered 400
  `ExpiredToken`, a bad one 400 `InvalidToken`, none 401 `AuthMissing`. An app password's
  session has scope `com.atproto.appPass`, the account password's `com.atproto.access`.
- `createRecord` takes a post only with `repo` the caller's DID, a record key that is a TID
  (one is chosen when none is given), `text` of at most 300 graphemes and 3,000 bytes,
  `createdAt`, and at most 4 images with `alt`, whose blobs were uploaded; a key already
  used answers 500 `InternalServerError`. Each refusal has the status, error name and
  message the reference server gives (tests/platforms/bluesky/test_emulator.py compares
  the two). Like it, facets are not checked against the text.
- One difference, on purpose: the reference server still accepts a refresh token for a
  grace period after it was spent; here a spent one is refused at once, so a client that
  reuses one is caught.
- Errors are `{"error": name, "message": text}`; every call carries `RateLimit-Limit`,
  `-Remaining`, `-Reset` (epoch seconds) and `-Policy`, and past the limit answers 429.

Faults for tests: `faults` (or `PUT /_emulator/faults`) make the next writes hang or fail
with a 500 after the record was stored, or the server answer 503.
`crier emulator bluesky` runs one.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import jwt
import regex
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from crier.kit.time import Clock, SystemClock

ACCESS_TTL = timedelta(hours=2)
REFRESH_TTL = timedelta(days=90)
RATE_WINDOW = timedelta(minutes=5)
MAX_BLOB = 1_000_000 * 50
MAX_IMAGE = 2_000_000
_TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"
_TID = regex.compile(r"^[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}$")


@dataclass
class Faults:
    hang_after_store: int = 0
    """The next writes are stored, then their call hangs for `hang_seconds`."""
    hang_seconds: float = 30.0
    fail_after_store: int = 0
    """The next writes are stored, then answered 500."""
    unavailable: int = 0
    """The next calls answer 503 (nothing stored)."""
    rate_limit: int = 3000
    """Calls per account per 5 minutes."""


@dataclass
class Account:
    did: str
    handle: str
    password: str
    app_passwords: set[str] = field(default_factory=set)
    display_name: str | None = None
    followers: int = 0
    """As other users of the network follow it (what the AppView counts)."""


@dataclass
class Server:
    """The server's state, in memory."""

    clock: Clock
    faults: Faults = field(default_factory=Faults)
    secret: str = field(default_factory=lambda: secrets.token_hex(32))
    accounts: dict[str, Account] = field(default_factory=dict)
    records: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Every record by its at:// URI."""
    blobs: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    spent: set[str] = field(default_factory=set)
    """Refresh tokens already used (their `jti`)."""
    calls: dict[str, list[datetime]] = field(default_factory=dict)
    likes: dict[str, int] = field(default_factory=dict)

    def create_account(self, handle: str) -> Account:
        """An account with `handle`, whose own password is random."""
        did = "did:plc:" + hashlib.sha256(handle.encode()).hexdigest()[:24]
        account = Account(did, handle, secrets.token_urlsafe(12))
        self.accounts[did] = account
        return account

    def app_password(self, handle: str) -> str:
        """A new app password for the account with `handle`."""
        account = next(a for a in self.accounts.values() if a.handle == handle)
        word = "-".join(secrets.token_hex(2) for _ in range(4))
        account.app_passwords.add(word)
        return word

    def posts_of(self, did: str) -> list[dict[str, Any]]:
        prefix = f"at://{did}/app.bsky.feed.post/"
        return [r for uri, r in self.records.items() if uri.startswith(prefix)]


class Refused(Exception):
    def __init__(self, status: int, error: str, message: str) -> None:
        super().__init__(error)
        self.status, self.error, self.message = status, error, message


def _tid(moment: datetime) -> str:
    """A record key of the TID form for `moment` (microseconds, then a random clock id)."""
    value = (int(moment.timestamp() * 1_000_000) << 10) | secrets.randbelow(1024)
    return "".join(_TID_ALPHABET[(value >> (5 * i)) & 31] for i in reversed(range(13)))


def _graphemes(text: str) -> int:
    return len(regex.findall(r"\X", text))


def create_emulator_app(server: Server | None = None) -> Starlette:
    """A Bluesky server over `server` (a fresh one when None)."""
    state = server or Server(SystemClock())

    def now() -> datetime:
        return state.clock.now()

    def issue(account: Account, scope: str) -> dict[str, Any]:
        moment = int(now().timestamp())
        access = {"scope": scope, "sub": account.did, "iat": moment}
        access["exp"] = moment + int(ACCESS_TTL.total_seconds())
        refresh = {"scope": "com.atproto.refresh", "sub": account.did, "iat": moment}
        refresh |= {"exp": moment + int(REFRESH_TTL.total_seconds()), "jti": secrets.token_hex(8)}
        refresh["granted"] = scope
        return {
            "accessJwt": jwt.encode(access, state.secret, headers={"typ": "at+jwt"}),
            "refreshJwt": jwt.encode(refresh, state.secret, headers={"typ": "refresh+jwt"}),
            "handle": account.handle,
            "did": account.did,
            "active": True,
        }

    def claims(request: Request, kind: str) -> dict[str, Any]:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(401, "AuthMissing", "Authentication Required")
        try:
            found: dict[str, Any] = jwt.decode(
                token.strip(),
                state.secret,
                algorithms=["HS256"],
                # times are checked below, on the server's own clock
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False},
            )
        except jwt.InvalidTokenError:
            raise Refused(400, "InvalidToken", "Token could not be verified") from None
        if found.get("exp", 0) <= now().timestamp():
            raise Refused(400, "ExpiredToken", "Token has expired")
        refresh = found.get("scope") == "com.atproto.refresh"
        if refresh != (kind == "refresh"):
            raise Refused(400, "InvalidToken", "Invalid token type")
        if found.get("sub") not in state.accounts:
            raise Refused(400, "InvalidToken", "Token could not be verified")
        count_call(request, str(found["sub"]))
        return found

    def count_call(request: Request, did: str) -> None:
        moment = now()
        recent = [t for t in state.calls.get(did, []) if t > moment - RATE_WINDOW]
        reset = (recent[0] if recent else moment) + RATE_WINDOW
        limit = state.faults.rate_limit
        request.state.limit = (limit, max(0, limit - len(recent) - 1), reset)
        if len(recent) >= limit:
            raise Refused(429, "RateLimitExceeded", "Rate Limit Exceeded")
        state.calls[did] = [*recent, moment]

    def xrpc(handler: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            request.state.limit = None
            try:
                if state.faults.unavailable > 0:
                    state.faults.unavailable -= 1
                    raise Refused(503, "InternalServerError", "Service Unavailable")
                response: Response = await handler(request)
            except Refused as refused:
                body = {"error": refused.error, "message": refused.message}
                response = JSONResponse(body, status_code=refused.status)
            if request.state.limit is not None:
                limit, remaining, reset = request.state.limit
                response.headers["RateLimit-Limit"] = str(limit)
                response.headers["RateLimit-Remaining"] = str(remaining)
                response.headers["RateLimit-Reset"] = str(int(reset.timestamp()))
                response.headers["RateLimit-Policy"] = f"{limit};w={int(RATE_WINDOW.seconds)}"
            return response

        return wrapped

    async def body_of(request: Request) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise Refused(400, "InvalidRequest", "Wrong request encoding (Content-Type)")
        try:
            body = await request.json()
        except ValueError:
            raise Refused(400, "InvalidRequest", "Request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "InvalidRequest", "Input must be an object")
        return body

    async def create_session(request: Request) -> Response:
        body = await body_of(request)
        identifier, password = body.get("identifier"), body.get("password")
        if not isinstance(identifier, str) or not isinstance(password, str):
            raise Refused(
                400, "InvalidRequest", "Input must have the properties identifier, password"
            )
        account = next(
            (a for a in state.accounts.values() if identifier.lower() in (a.handle, a.did)), None
        )
        if account is not None and password in account.app_passwords:
            return JSONResponse(issue(account, "com.atproto.appPass"))
        if account is not None and password == account.password:
            return JSONResponse(issue(account, "com.atproto.access"))
        raise Refused(401, "AuthenticationRequired", "Invalid identifier or password")

    async def refresh_session(request: Request) -> Response:
        found = claims(request, "refresh")
        if found["jti"] in state.spent:
            raise Refused(400, "ExpiredToken", "Token has been revoked")
        state.spent.add(found["jti"])
        return JSONResponse(issue(state.accounts[found["sub"]], found["granted"]))

    async def delete_session(request: Request) -> Response:
        found = claims(request, "refresh")
        state.spent.add(found["jti"])
        return Response(status_code=200)

    async def upload_blob(request: Request) -> Response:
        claims(request, "access")
        kind = request.headers.get("content-type", "")
        content = await request.body()
        if len(content) > MAX_BLOB:
            raise Refused(400, "BlobTooLarge", "This file is too large")
        if not kind or kind == "*/*":
            raise Refused(
                400, "InvalidRequest", "Request encoding (Content-Type) required but not provided"
            )
        cid = "bafkrei" + hashlib.sha256(content).hexdigest()[:52]
        state.blobs[cid] = (kind, content)
        blob = {"$type": "blob", "ref": {"$link": cid}, "mimeType": kind, "size": len(content)}
        return JSONResponse({"blob": blob})

    def check_post(record: dict[str, Any]) -> None:
        def invalid(problem: str) -> Refused:
            return Refused(400, "InvalidRequest", f"Invalid app.bsky.feed.post record: {problem}")

        for key in ("text", "createdAt"):
            if not isinstance(record.get(key), str):
                raise invalid(f'Missing required key "{key}" at $.record')
        text = record["text"]
        if _graphemes(text) > 300:
            raise invalid(
                f"grapheme too big (maximum 300, got {_graphemes(text)}) at $.record.text"
            )
        if len(text.encode()) > 3000:
            raise invalid(
                f"string too big (maximum 3000, got {len(text.encode())}) at $.record.text"
            )
        embed = record.get("embed")
        if embed is not None and embed.get("$type") == "app.bsky.embed.images":
            images = embed.get("images") or []
            if len(images) > 4:
                raise invalid("Array is too long (maximum 4) at $.record.embed.images")
            for i, image in enumerate(images):
                if not isinstance(image.get("alt"), str):
                    raise invalid(f'Missing required key "alt" at $.record.embed.images[{i}]')
                ref = ((image.get("image") or {}).get("ref") or {}).get("$link")
                stored = state.blobs.get(str(ref))
                if stored is None:
                    raise Refused(400, "BlobNotFound", f"Could not find blob: {ref}")
                if not stored[0].startswith("image/") or len(stored[1]) > MAX_IMAGE:
                    raise invalid(
                        f"blob too big (maximum {MAX_IMAGE}) at $.record.embed.images[{i}]"
                    )

    async def write(did: str, collection: str, rkey: Any, record: Any) -> dict[str, Any]:
        if not isinstance(record, dict) or record.get("$type", collection) != collection:
            got = record.get("$type") if isinstance(record, dict) else None
            raise Refused(400, "InvalidRequest", f"Invalid $type: expected {collection}, got {got}")
        if rkey is None:
            rkey = _tid(now())  # the server names the record when the client does not
        if not isinstance(rkey, str) or not _TID.match(rkey):
            raise Refused(400, "InvalidRequest", f'Invalid record key (got "{rkey}") at $.rkey')
        if collection == "app.bsky.feed.post":
            check_post(record)
        uri = f"at://{did}/{collection}/{rkey}"
        if uri in state.records:
            raise Refused(500, "InternalServerError", "Internal Server Error")
        cid = "bafyrei" + hashlib.sha256(repr(record).encode()).hexdigest()[:52]
        return {"uri": uri, "cid": cid, "value": record}

    async def stored(request: Request, written: list[dict[str, Any]]) -> None:
        for entry in written:
            state.records[entry["uri"]] = entry
        if state.faults.hang_after_store > 0:
            state.faults.hang_after_store -= 1
            await asyncio.sleep(state.faults.hang_seconds)
        if state.faults.fail_after_store > 0:
            state.faults.fail_after_store -= 1
            raise Refused(500, "InternalServerError", "Internal Server Error")

    def own_repo(found: dict[str, Any], body: dict[str, Any]) -> str:
        repo = body.get("repo")
        account = state.accounts[found["sub"]]
        if repo in (account.did, account.handle):
            return account.did
        if any(repo in (a.did, a.handle) for a in state.accounts.values()):
            raise Refused(401, "AuthenticationRequired", "Authentication Required")
        raise Refused(403, "AccountNotFound", "Account not found")

    async def create_record(request: Request) -> Response:
        found = claims(request, "access")
        body = await body_of(request)
        did = own_repo(found, body)
        collection = str(body.get("collection") or "")
        entry = await write(did, collection, body.get("rkey"), body.get("record"))
        await stored(request, [entry])
        return JSONResponse({"uri": entry["uri"], "cid": entry["cid"], "validationStatus": "valid"})

    async def apply_writes(request: Request) -> Response:
        found = claims(request, "access")
        body = await body_of(request)
        did = own_repo(found, body)
        entries = []
        for item in body.get("writes") or []:
            if item.get("$type") != "com.atproto.repo.applyWrites#create":
                raise Refused(400, "InvalidRequest", "Only creates are emulated")
            entries.append(
                await write(did, item.get("collection"), item.get("rkey"), item.get("value"))
            )
        if len({e["uri"] for e in entries}) < len(entries):
            raise Refused(500, "InternalServerError", "Internal Server Error")
        await stored(request, entries)
        results = [
            {"$type": "com.atproto.repo.applyWrites#createResult", "uri": e["uri"], "cid": e["cid"]}
            for e in entries
        ]
        return JSONResponse({"results": results})

    async def get_record(request: Request) -> Response:
        query = request.query_params
        repo, collection, rkey = query.get("repo"), query.get("collection"), query.get("rkey")
        if not repo or not collection or not rkey:
            raise Refused(400, "InvalidRequest", "Params must have repo, collection and rkey")
        account = next((a for a in state.accounts.values() if repo in (a.did, a.handle)), None)
        if account is None:
            raise Refused(400, "InvalidRequest", f"Could not find repo: {repo}")
        uri = f"at://{account.did}/{collection}/{rkey}"
        if collection == "app.bsky.actor.profile" and rkey == "self" and account.display_name:
            value = {"$type": collection, "displayName": account.display_name}
            return JSONResponse({"uri": uri, "value": value})
        entry = state.records.get(uri)
        if entry is None:
            raise Refused(400, "RecordNotFound", f"Could not locate record: {uri}")
        return JSONResponse(entry)

    async def resolve_handle(request: Request) -> Response:
        handle = request.query_params.get("handle", "").lower()
        for account in state.accounts.values():
            if account.handle == handle:
                return JSONResponse({"did": account.did})
        raise Refused(400, "InvalidRequest", "Unable to resolve handle")

    async def get_posts(request: Request) -> Response:
        claims(request, "access")
        uris = request.query_params.getlist("uris")
        if len(uris) > 25:
            raise Refused(400, "InvalidRequest", "uris must not have more than 25 elements")
        views = [
            {
                "uri": uri,
                "cid": state.records[uri]["cid"],
                "record": state.records[uri]["value"],
                "likeCount": state.likes.get(uri, 0),
                "repostCount": 0,
                "replyCount": 0,
                "quoteCount": 0,
            }
            for uri in uris
            if uri in state.records
        ]
        return JSONResponse({"posts": views})

    async def get_profile(request: Request) -> Response:
        """The actor's profile as the AppView shows it (here, the PDS's own accounts)."""
        claims(request, "access")
        actor = request.query_params.get("actor")
        if not actor:
            raise Refused(400, "InvalidRequest", 'Error: Params must have the property "actor"')
        found = next(
            (a for a in state.accounts.values() if actor in (a.did, a.handle)),
            None,
        )
        if found is None:
            raise Refused(400, "InvalidRequest", "Profile not found")
        profile: dict[str, Any] = {
            "did": found.did,
            "handle": found.handle,
            "followersCount": found.followers,
            "followsCount": 0,
            "postsCount": len(state.posts_of(found.did)),
        }
        if found.display_name:
            profile["displayName"] = found.display_name
        return JSONResponse(profile)

    async def control_faults(request: Request) -> Response:
        body = await body_of(request)
        for name, value in body.items():
            if not hasattr(state.faults, name):
                raise Refused(400, "InvalidRequest", f"unknown fault {name}")
            setattr(state.faults, name, type(getattr(state.faults, name))(value))
        return JSONResponse(asdict(state.faults))

    async def control_accounts(request: Request) -> Response:
        body = await body_of(request)
        handle = str(body.get("handle") or "")
        if not handle or "." not in handle:
            raise Refused(400, "InvalidRequest", "a handle with a dot is required")
        account = state.create_account(handle.lower())
        account.display_name = body.get("display_name")
        return JSONResponse(
            {"did": account.did, "handle": account.handle, "password": account.password}
            | {"app_password": state.app_password(account.handle)}
        )

    post = ["POST"]
    routes = [
        Route("/xrpc/com.atproto.server.createSession", xrpc(create_session), methods=post),
        Route("/xrpc/com.atproto.server.refreshSession", xrpc(refresh_session), methods=post),
        Route("/xrpc/com.atproto.server.deleteSession", xrpc(delete_session), methods=post),
        Route("/xrpc/com.atproto.repo.uploadBlob", xrpc(upload_blob), methods=post),
        Route("/xrpc/com.atproto.repo.createRecord", xrpc(create_record), methods=post),
        Route("/xrpc/com.atproto.repo.applyWrites", xrpc(apply_writes), methods=post),
        Route("/xrpc/com.atproto.repo.getRecord", xrpc(get_record), methods=["GET"]),
        Route("/xrpc/com.atproto.identity.resolveHandle", xrpc(resolve_handle), methods=["GET"]),
        Route("/xrpc/app.bsky.feed.getPosts", xrpc(get_posts), methods=["GET"]),
        Route("/xrpc/app.bsky.actor.getProfile", xrpc(get_profile), methods=["GET"]),
        Route("/_emulator/faults", xrpc(control_faults), methods=["PUT"]),
        Route("/_emulator/accounts", xrpc(control_accounts), methods=post),
    ]
    app = Starlette(routes=routes)
    app.state.server = state
    return app
