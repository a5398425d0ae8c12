"""A Mastodon instance on loopback: the documented client API Crier uses, and nothing else.

Written from Mastodon's documentation (docs.joinmastodon.org: methods/apps, methods/oauth,
methods/accounts, methods/instance, methods/media, methods/statuses, api/rate-limits,
entities/Error), and as strict as an instance where it is strict:

- `POST /api/v1/apps` registers an app (`client_name` and `redirect_uris` required);
- `GET /oauth/authorize` shows a consent form for a registered client, redirect URI and
  scopes (a subset of the app's); PKCE takes only `S256`. Approving redirects with `code`
  and `state`; denying with `error=access_denied`;
- `POST /oauth/token` trades a code once, within 10 minutes, for the same client, redirect
  URI and PKCE verifier (`invalid_grant` otherwise; `invalid_client` for a bad secret);
  `POST /oauth/revoke` revokes a token of the client's own (403 otherwise);
- `GET /api/v1/accounts/verify_credentials`, `GET /api/v2/instance`;
- `POST /api/v2/media` (multipart `file` with a type the instance takes, `description`):
  200 when processed at once, 202 with `url: null` while processing, which
  `GET /api/v1/media/:id` answers 206 until it is done;
- `POST /api/v1/statuses` (form or JSON) with `Idempotency-Key` kept for an hour: the same
  key answers the status it made. A status counts as Mastodon counts it; media must be
  the account's own and processed;
- `GET /api/v1/statuses/:id`; `GET /api/v1/statuses/:id/source`, the text as typed, of
  the caller's own statuses only (404 for others'); `GET /api/v1/accounts/:id/statuses`,
  newest first, `limit` up to 40, paged by `max_id`, `since_id` and `min_id` with a `Link`
  header. A status shows the `application` that posted it to its author only.

Errors are `{"error": "..."}` (OAuth ones add `error_description`). Every authenticated
call carries `X-RateLimit-Limit`, `-Remaining` and `-Reset` (an ISO 8601 time); past the
limit (300 calls in 5 minutes per account by default) it answers 429.

Faults for tests and demos: `faults` (or `PUT /_emulator/faults`) can make the next
statuses hang or fail with a 500 after they were stored, media take polls to process,
the instance answer 503, or behave as GoToSocial does (ignore `Idempotency-Key`, refuse
a status with a 400). `GET /_emulator/statuses` lists every status with the key it was
sent with. `crier emulator mastodon` runs one.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import secrets
from base64 import urlsafe_b64encode
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Any
from urllib.parse import urlencode

import regex
from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from crier.kit.time import Clock, SystemClock

CODE_TTL = timedelta(minutes=10)
IDEMPOTENCY_TTL = timedelta(hours=1)
RATE_WINDOW = timedelta(minutes=5)
KNOWN_SCOPES = frozenset(
    {"read", "write", "follow", "push", "profile"}
    | {f"read:{s}" for s in ("accounts", "statuses", "search", "notifications", "lists")}
    | {f"write:{s}" for s in ("accounts", "statuses", "media", "favourites", "lists")}
)
VISIBILITIES = frozenset({"public", "unlisted", "private", "direct"})
IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "image/heic"})
VIDEO_TYPES = frozenset({"video/mp4", "video/quicktime", "video/webm"})
_WORD = regex.compile(r"\S+")
_REMOTE_MENTION = regex.compile(r"(@[A-Za-z0-9_]+)@[A-Za-z0-9.-]+[A-Za-z0-9]")


def status_length(text: str, link_length: int = 23) -> int:
    """A status's length as Mastodon's user guide (user/posting) states it, counted here on
    its own: characters as people see them (grapheme clusters); each word that begins with
    `http://` or `https://` is a link and counts 23 (`characters_reserved_per_url`); a
    mention's domain is not counted."""

    def counted(word: regex.Match[str]) -> str:
        found = word.group()
        if found.startswith(("http://", "https://")):
            return "-" * link_length
        return _REMOTE_MENTION.sub(lambda m: m.group(1), found)

    return len(regex.findall(r"\X", _WORD.sub(counted, text)))


_INVALID_GRANT = (
    "The provided authorization grant is invalid, expired, revoked, does not match the "
    "redirection URI used in the authorization request, or was issued to another client."
)
_INVALID_CLIENT = (
    "Client authentication failed due to unknown client, no client authentication "
    "included, or unsupported authentication method."
)


@dataclass
class Faults:
    hang_after_store: int = 0
    """The next statuses are stored, then their call hangs for `hang_seconds`."""
    hang_seconds: float = 30.0
    fail_after_store: int = 0
    """The next statuses are stored, then answered 500."""
    ignore_idempotency_keys: bool = False
    """`Idempotency-Key` is taken and ignored, as GoToSocial does: a resend posts again."""
    refuses_as_gotosocial: bool = False
    """A status over the limit is refused as GoToSocial refuses it: 400, its own words."""
    processing_polls: int = 0
    """Uploaded images process in the background: 206 this many times, then 200."""
    unavailable: int = 0
    """The next API calls answer 503 (nothing stored)."""
    rate_limit: int = 300
    """Calls per account per 5 minutes."""
    max_characters: int = 500
    characters_reserved_per_url: int = 23
    max_media_attachments: int = 4


@dataclass
class App:
    id: str
    name: str
    redirect_uris: list[str]
    scopes: set[str]
    client_id: str
    client_secret: str
    website: str | None


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    scopes: set[str]
    account_id: str
    challenge: str | None
    expires_at: datetime


@dataclass
class Token:
    client_id: str
    account_id: str
    scopes: set[str]
    revoked: bool = False


@dataclass
class Media:
    id: str
    account_id: str
    type: str
    description: str | None
    polls_left: int
    attached: bool = False


@dataclass
class StoredStatus:
    id: str
    account_id: str
    text: str
    created_at: datetime
    visibility: str
    language: str | None
    spoiler_text: str
    sensitive: bool
    media_ids: list[str]
    idempotency_key: str | None
    client_id: str | None = None
    """The app that posted it."""


@dataclass
class Instance:
    """The instance's state, in memory."""

    clock: Clock
    faults: Faults = field(default_factory=Faults)
    apps: dict[str, App] = field(default_factory=dict)
    accounts: dict[str, dict[str, str]] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    media: dict[str, Media] = field(default_factory=dict)
    statuses: dict[str, StoredStatus] = field(default_factory=dict)
    keys: dict[tuple[str, str], tuple[str, datetime]] = field(default_factory=dict)
    calls: dict[str, list[datetime]] = field(default_factory=dict)
    """Each account's recent authenticated calls, for its rate limit."""
    followers: dict[str, int] = field(default_factory=dict)
    """Each account's followers (by account id), as other users of the network follow it."""
    received: int = 0
    """API requests received, of any kind."""
    ids: Any = field(default_factory=lambda: count(109_000_000_000_000_000))

    def next_id(self) -> str:
        return str(next(self.ids))

    def account_named(self, username: str) -> dict[str, str]:
        for account in self.accounts.values():
            if account["username"] == username:
                return account
        account = {"id": self.next_id(), "username": username, "display_name": username.title()}
        self.accounts[account["id"]] = account
        return account

    def statuses_with_key(self, key: str) -> list[StoredStatus]:
        return [s for s in self.statuses.values() if s.idempotency_key == key]


class Refused(Exception):
    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(error)
        self.status, self.error, self.description = status, error, description


def _error(status: int, error: str, description: str | None = None) -> JSONResponse:
    body = {"error": error} | ({"error_description": description} if description else {})
    return JSONResponse(body, status_code=status)


def _covers(granted: set[str], needed: str) -> bool:
    """Whether `granted` scopes include `needed` (`write` covers `write:media`)."""
    return needed in granted or needed.split(":")[0] in granted


async def _params(request: Request) -> dict[str, Any]:
    """Form or JSON parameters, as Mastodon takes either; `name[]` fields as lists."""
    kind = request.headers.get("content-type", "")
    if kind.startswith("application/json"):
        try:
            body = await request.json()
        except ValueError:
            raise Refused(400, "The request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise Refused(400, "The request body must be an object")
        return body
    if kind.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        found: dict[str, Any] = {}
        async with request.form() as form:
            for name in set(form):
                values = [v for v in form.getlist(name) if isinstance(v, str)]
                if name.endswith("[]"):
                    found[name[:-2]] = values
                elif values:
                    found[name] = values[-1]
        return found
    if not await request.body():
        return dict(request.query_params)
    raise Refused(415, "Unsupported content type")


def create_emulator_app(instance: Instance | None = None) -> Starlette:
    """A Mastodon instance over `instance` (a fresh one when None)."""
    state = instance or Instance(SystemClock())

    def now() -> datetime:
        return state.clock.now()

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def authenticated(request: Request, scope: str) -> tuple[Token, dict[str, str]]:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = state.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.revoked:
            raise Refused(401, "The access token is invalid")
        if not _covers(token.scopes, scope):
            raise Refused(403, "This action is outside the authorized scopes")
        request.state.limit = _count_call(token.account_id)
        return token, state.accounts[token.account_id]

    def _count_call(account_id: str) -> tuple[int, int, datetime]:
        moment = now()
        recent = [t for t in state.calls.get(account_id, []) if t > moment - RATE_WINDOW]
        reset = (recent[0] if recent else moment) + RATE_WINDOW
        if len(recent) >= state.faults.rate_limit:
            raise Refused(429, "Too many requests")
        recent.append(moment)
        state.calls[account_id] = recent
        return state.faults.rate_limit, state.faults.rate_limit - len(recent), reset

    def api(handler: Any) -> Any:
        """Faults, error bodies and rate-limit headers around an API handler."""

        async def wrapped(request: Request) -> Response:
            state.received += 1
            request.state.limit = None
            try:
                if state.faults.unavailable > 0:
                    state.faults.unavailable -= 1
                    raise Refused(503, "Service Unavailable")
                response: Response = await handler(request)
            except Refused as refused:
                response = _error(refused.status, refused.error, refused.description)
                if refused.status == 429:
                    moment = now()
                    calls = state.calls.get(_token_account(request) or "", [moment])
                    request.state.limit = (state.faults.rate_limit, 0, calls[0] + RATE_WINDOW)
            if request.state.limit is not None:
                limit, remaining, reset = request.state.limit
                response.headers["X-RateLimit-Limit"] = str(limit)
                response.headers["X-RateLimit-Remaining"] = str(max(0, remaining))
                response.headers["X-RateLimit-Reset"] = reset.isoformat().replace("+00:00", "Z")
            return response

        return wrapped

    def _token_account(request: Request) -> str | None:
        _, _, value = request.headers.get("authorization", "").partition(" ")
        token = state.tokens.get(value.strip())
        return token.account_id if token else None

    async def create_app(request: Request) -> Response:
        params = await _params(request)
        name = str(params.get("client_name") or "").strip()
        uris = params.get("redirect_uris")
        if isinstance(uris, str):
            uris = [u for u in uris.split() if u]
        if not name:
            raise Refused(422, "Validation failed: Application name can't be blank")
        if not uris:
            raise Refused(422, "Validation failed: Redirect URI can't be blank")
        scopes = set(str(params.get("scopes") or "read").split())
        if unknown := scopes - KNOWN_SCOPES:
            raise Refused(422, f"Validation failed: Scopes {' '.join(sorted(unknown))} invalid")
        app = App(
            id=state.next_id(),
            name=name,
            redirect_uris=list(uris),
            scopes=scopes,
            client_id=secrets.token_urlsafe(32),
            client_secret=secrets.token_urlsafe(32),
            website=params.get("website"),
        )
        state.apps[app.client_id] = app
        return JSONResponse(
            {
                "id": app.id,
                "name": app.name,
                "website": app.website,
                "scopes": sorted(app.scopes),
                "redirect_uri": "\n".join(app.redirect_uris),
                "redirect_uris": app.redirect_uris,
                "client_id": app.client_id,
                "client_secret": app.client_secret,
                "client_secret_expires_at": 0,
            }
        )

    def _authorization(params: dict[str, Any]) -> tuple[App, str, set[str]]:
        """The app, redirect URI and scopes of an authorization request, if valid."""
        app = state.apps.get(str(params.get("client_id") or ""))
        redirect_uri = str(params.get("redirect_uri") or "")
        if app is None:
            raise Refused(401, "invalid_client", _INVALID_CLIENT)
        if redirect_uri not in app.redirect_uris:
            raise Refused(
                400,
                "invalid_redirect_uri",
                "The requested redirect uri is malformed or doesn't match client redirect URI.",
            )
        return app, redirect_uri, set(str(params.get("scope") or "read").split())

    async def authorize_form(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            app, redirect_uri, scopes = _authorization(params)
        except Refused as refused:
            return HTMLResponse(
                f"<h1>An error has occurred</h1><p>{html.escape(refused.description or '')}</p>",
                status_code=refused.status,
            )
        state_value = params.get("state")
        if params.get("response_type") != "code":
            return _redirect_error(redirect_uri, "unsupported_response_type", state_value)
        if not scopes <= app.scopes:
            return _redirect_error(redirect_uri, "invalid_scope", state_value)
        if params.get("code_challenge") and params.get("code_challenge_method") != "S256":
            return _redirect_error(redirect_uri, "invalid_request", state_value)
        hidden = "".join(
            f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(str(v))}">'
            for k, v in params.items()
        )
        page = (
            "<!doctype html><title>Authorize</title>"
            f"<h1>{html.escape(app.name)} would like to use your account</h1>"
            f"<p>Permissions: {html.escape(' '.join(sorted(scopes)))}</p>"
            f'<form method="post" action="/oauth/authorize">{hidden}'
            '<label>Username <input name="username" value="alice"></label>'
            '<button name="decision" value="approve">Authorize</button>'
            '<button name="decision" value="deny">Deny</button></form>'
        )
        return HTMLResponse(page)

    def _redirect_error(redirect_uri: str, error: str, state_value: str | None) -> Response:
        query = {"error": error, "error_description": error.replace("_", " ")}
        if state_value is not None:
            query["state"] = state_value
        return RedirectResponse(_with_query(redirect_uri, query), status_code=302)

    async def authorize_decision(request: Request) -> Response:
        params = await _params(request)
        app, redirect_uri, scopes = _authorization(params)
        state_value = params.get("state")
        if params.get("decision") != "approve":
            return _redirect_error(redirect_uri, "access_denied", state_value)
        account = state.account_named(str(params.get("username") or "alice"))
        code = secrets.token_urlsafe(32)
        state.grants[code] = Grant(
            app.client_id,
            redirect_uri,
            scopes,
            account["id"],
            params.get("code_challenge") or None,
            now() + CODE_TTL,
        )
        query = {"code": code} | ({"state": state_value} if state_value is not None else {})
        return RedirectResponse(_with_query(redirect_uri, query), status_code=302)

    def _client(params: dict[str, Any]) -> App:
        app = state.apps.get(str(params.get("client_id") or ""))
        if app is None or not secrets.compare_digest(
            app.client_secret, str(params.get("client_secret") or "")
        ):
            raise Refused(401, "invalid_client", _INVALID_CLIENT)
        return app

    async def token(request: Request) -> Response:
        params = await _params(request)
        grant_type = params.get("grant_type")
        if grant_type not in ("authorization_code", "client_credentials"):
            raise Refused(
                400,
                "unsupported_grant_type",
                "The authorization grant type is not supported by the authorization server.",
            )
        app = _client(params)
        if grant_type == "client_credentials":
            raise Refused(400, "invalid_scope", "App-only tokens are not served here.")
        grant = state.grants.pop(str(params.get("code") or ""), None)
        if (
            grant is None
            or grant.client_id != app.client_id
            or grant.expires_at <= now()
            or grant.redirect_uri != params.get("redirect_uri")
        ):
            raise Refused(400, "invalid_grant", _INVALID_GRANT)
        if grant.challenge is not None:
            verifier = str(params.get("code_verifier") or "")
            digest = hashlib.sha256(verifier.encode()).digest()
            if urlsafe_b64encode(digest).rstrip(b"=").decode() != grant.challenge:
                raise Refused(400, "invalid_grant", _INVALID_GRANT)
        access = secrets.token_urlsafe(32)
        state.tokens[access] = Token(app.client_id, grant.account_id, grant.scopes)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "scope": " ".join(sorted(grant.scopes)),
                "created_at": int(now().timestamp()),
            }
        )

    async def revoke(request: Request) -> Response:
        params = await _params(request)
        app = _client(params)
        found = state.tokens.get(str(params.get("token") or ""))
        if found is None or found.client_id != app.client_id:
            raise Refused(403, "unauthorized_client", "You are not authorized to revoke this token")
        found.revoked = True
        return JSONResponse({})

    def account_entity(request: Request, account: dict[str, str]) -> dict[str, Any]:
        host = request.url.netloc
        return {
            "id": account["id"],
            "username": account["username"],
            "acct": account["username"],
            "display_name": account["display_name"],
            "url": f"{base(request)}/@{account['username']}",
            "uri": f"{base(request)}/users/{account['username']}",
            "followers_count": state.followers.get(account["id"], 0),
            "following_count": 0,
            "statuses_count": sum(
                1 for s in state.statuses.values() if s.account_id == account["id"]
            ),
            "note": f"<p>On {html.escape(host)}</p>",
        }

    async def verify_credentials(request: Request) -> Response:
        _, account = authenticated(request, "read:accounts")
        return JSONResponse(account_entity(request, account))

    async def instance_v2(request: Request) -> Response:
        return JSONResponse(
            {
                "domain": request.url.netloc,
                "title": "Crier's Mastodon emulator",
                "version": "4.5.0",
                "configuration": {
                    "statuses": {
                        "max_characters": state.faults.max_characters,
                        "max_media_attachments": state.faults.max_media_attachments,
                        "characters_reserved_per_url": state.faults.characters_reserved_per_url,
                    },
                    "media_attachments": {
                        "supported_mime_types": sorted(IMAGE_TYPES | VIDEO_TYPES),
                        "image_size_limit": 16777216,
                        "image_matrix_limit": 33177600,
                        "video_size_limit": 103809024,
                    },
                },
            }
        )

    def media_entity(request: Request, media: Media) -> dict[str, Any]:
        ready = media.polls_left <= 0
        url = f"{base(request)}/system/media/{media.id}/original" if ready else None
        return {
            "id": media.id,
            "type": media.type,
            "url": url,
            "preview_url": f"{base(request)}/system/media/{media.id}/small",
            "remote_url": None,
            "description": media.description,
            "meta": {},
        }

    async def upload_media(request: Request) -> Response:
        token, _ = authenticated(request, "write:media")
        if not request.headers.get("content-type", "").startswith("multipart/form-data"):
            raise Refused(422, "Validation failed: File can't be blank")
        async with request.form() as form:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise Refused(422, "Validation failed: File can't be blank")
            content_type = (upload.content_type or "").split(";")[0]
            size = len(await upload.read())
            description = form.get("description")
        if content_type in IMAGE_TYPES:
            kind, polls, cap = "image", state.faults.processing_polls, 16777216
        elif content_type in VIDEO_TYPES:
            kind, polls, cap = "video", max(1, state.faults.processing_polls), 103809024
        else:
            raise Refused(422, "Validation failed: File content type is invalid, File is invalid")
        if size == 0 or size > cap:
            raise Refused(422, f"Validation failed: File file size must be less than {cap} bytes")
        media = Media(
            state.next_id(),
            token.account_id,
            kind,
            description if isinstance(description, str) else None,
            polls,
        )
        state.media[media.id] = media
        return JSONResponse(media_entity(request, media), status_code=202 if polls else 200)

    async def get_media(request: Request) -> Response:
        token, _ = authenticated(request, "write:media")
        media = state.media.get(request.path_params["id"])
        if media is None or media.account_id != token.account_id:
            raise Refused(404, "Record not found")
        if media.polls_left > 0:
            media.polls_left -= 1
            return Response(status_code=206)
        return JSONResponse(media_entity(request, media))

    def status_entity(request: Request, status: StoredStatus) -> dict[str, Any]:
        account = state.accounts[status.account_id]
        url = f"{base(request)}/@{account['username']}/{status.id}"
        app = state.apps.get(status.client_id or "")
        shown = {}
        if app is not None and _token_account(request) == status.account_id:
            shown["application"] = {"name": app.name, "website": app.website}
        return shown | {
            "id": status.id,
            "created_at": status.created_at.isoformat().replace("+00:00", "Z"),
            "uri": f"{base(request)}/users/{account['username']}/statuses/{status.id}",
            "url": url,
            "content": f"<p>{html.escape(status.text)}</p>",
            "visibility": status.visibility,
            "language": status.language,
            "spoiler_text": status.spoiler_text,
            "sensitive": status.sensitive,
            "media_attachments": [media_entity(request, state.media[m]) for m in status.media_ids],
            "account": account_entity(request, account),
            "replies_count": 0,
            "reblogs_count": 0,
            "favourites_count": 0,
            "quotes_count": 0,
        }

    async def post_status(request: Request) -> Response:
        token, account = authenticated(request, "write:statuses")
        key = request.headers.get("idempotency-key")
        if key and not state.faults.ignore_idempotency_keys:
            seen = state.keys.get((account["id"], key))
            if seen is not None and seen[1] > now() - IDEMPOTENCY_TTL:
                return JSONResponse(status_entity(request, state.statuses[seen[0]]))
        params = await _params(request)
        text = str(params.get("status") or "")
        media_ids = params.get("media_ids") or []
        if isinstance(media_ids, str):
            media_ids = [media_ids]
        media_ids = [str(m) for m in media_ids]
        visibility = str(params.get("visibility") or "public")
        spoiler = str(params.get("spoiler_text") or "")
        if not text.strip() and not media_ids:
            raise Refused(422, "Validation failed: Text can't be blank")
        link, limit = state.faults.characters_reserved_per_url, state.faults.max_characters
        if status_length(text, link) + status_length(spoiler, link) > limit:
            if state.faults.refuses_as_gotosocial:
                raise Refused(400, f"Bad Request: text with spoiler exceed max chars ({limit})")
            raise Refused(422, f"Validation failed: Text character limit of {limit} exceeded")
        if visibility not in VISIBILITIES:
            raise Refused(422, "Validation failed: Visibility is not included in the list")
        if len(media_ids) > state.faults.max_media_attachments:
            raise Refused(422, "Validation failed: Media attachments are too many")
        for media_id in media_ids:
            media = state.media.get(media_id)
            if media is None or media.account_id != account["id"] or media.attached:
                raise Refused(422, "Validation failed: Media attachments are invalid")
            if media.polls_left > 0:
                raise Refused(
                    422,
                    "Cannot attach files that have not finished processing. Try again in a moment!",
                )
        language = params.get("language")
        if language is not None and not (
            isinstance(language, str) and len(language) == 2 and language.isalpha()
        ):
            raise Refused(422, "Validation failed: Language is not a valid ISO 639-1 code")
        status = StoredStatus(
            id=state.next_id(),
            account_id=account["id"],
            text=text,
            created_at=now(),
            visibility=visibility,
            language=language,
            spoiler_text=spoiler,
            sensitive=str(params.get("sensitive", "false")).lower() in ("true", "1"),
            media_ids=media_ids,
            idempotency_key=key,
            client_id=token.client_id,
        )
        state.statuses[status.id] = status
        for media_id in media_ids:
            state.media[media_id].attached = True
        if key:
            state.keys[(account["id"], key)] = (status.id, now())
        if state.faults.hang_after_store > 0:
            state.faults.hang_after_store -= 1
            await asyncio.sleep(state.faults.hang_seconds)
        if state.faults.fail_after_store > 0:
            state.faults.fail_after_store -= 1
            raise Refused(500, "We're sorry, but something went wrong")
        return JSONResponse(status_entity(request, status))

    async def get_status(request: Request) -> Response:
        authenticated(request, "read:statuses")
        status = state.statuses.get(request.path_params["id"])
        if status is None:
            raise Refused(404, "Record not found")
        return JSONResponse(status_entity(request, status))

    async def get_status_source(request: Request) -> Response:
        _, account = authenticated(request, "read:statuses")
        status = state.statuses.get(request.path_params["id"])
        if status is None or status.account_id != account["id"]:
            raise Refused(404, "Record not found")
        return JSONResponse(
            {"id": status.id, "text": status.text, "spoiler_text": status.spoiler_text}
        )

    async def account_statuses(request: Request) -> Response:
        authenticated(request, "read:statuses")
        account_id = request.path_params["id"]
        if account_id not in state.accounts:
            raise Refused(404, "Record not found")
        query = request.query_params
        try:
            limit = min(40, int(query.get("limit", "20")))
            bounds = {n: int(query[n]) for n in ("max_id", "since_id", "min_id") if n in query}
        except ValueError:
            raise Refused(400, "limit and ids must be numbers") from None
        if limit < 1:
            raise Refused(400, "limit must be positive")
        mine = [
            s
            for s in sorted(state.statuses.values(), key=lambda s: int(s.id), reverse=True)
            if s.account_id == account_id
            and int(s.id) < bounds.get("max_id", int(s.id) + 1)
            and int(s.id) > bounds.get("since_id", bounds.get("min_id", -1))
        ]
        page = mine[-limit:] if "min_id" in bounds else mine[:limit]
        response = JSONResponse([status_entity(request, s) for s in page])
        if page:
            here = f"{base(request)}/api/v1/accounts/{account_id}/statuses"
            response.headers["Link"] = (
                f'<{here}?{urlencode({"limit": limit, "max_id": page[-1].id})}>; rel="next", '
                f'<{here}?{urlencode({"limit": limit, "min_id": page[0].id})}>; rel="prev"'
            )
        return response

    async def metadata(request: Request) -> Response:
        root = base(request)
        return JSONResponse(
            {
                "issuer": f"{root}/",
                "authorization_endpoint": f"{root}/oauth/authorize",
                "token_endpoint": f"{root}/oauth/token",
                "app_registration_endpoint": f"{root}/api/v1/apps",
                "revocation_endpoint": f"{root}/oauth/revoke",
                "scopes_supported": sorted(KNOWN_SCOPES),
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "grant_types_supported": ["authorization_code", "client_credentials"],
            }
        )

    async def control_statuses(request: Request) -> Response:
        return JSONResponse(
            {
                "data": [
                    asdict(s) | {"created_at": s.created_at.isoformat()}
                    for s in state.statuses.values()
                ]
            }
        )

    async def control_faults(request: Request) -> Response:
        params = await _params(request)
        for name, value in params.items():
            if not hasattr(state.faults, name):
                raise Refused(422, f"unknown fault {name}")
            kind = type(getattr(state.faults, name))
            if kind is bool and isinstance(value, str):
                value = value.lower() in ("true", "1")
            setattr(state.faults, name, kind(value))
        return JSONResponse(asdict(state.faults))

    routes = [
        Route("/api/v1/apps", api(create_app), methods=["POST"]),
        Route("/oauth/authorize", authorize_form, methods=["GET"]),
        Route("/oauth/authorize", api(authorize_decision), methods=["POST"]),
        Route("/oauth/token", api(token), methods=["POST"]),
        Route("/oauth/revoke", api(revoke), methods=["POST"]),
        Route("/.well-known/oauth-authorization-server", metadata, methods=["GET"]),
        Route("/api/v1/accounts/verify_credentials", api(verify_credentials), methods=["GET"]),
        Route("/api/v1/accounts/{id}/statuses", api(account_statuses), methods=["GET"]),
        Route("/api/v2/instance", api(instance_v2), methods=["GET"]),
        Route("/api/v2/media", api(upload_media), methods=["POST"]),
        Route("/api/v1/media/{id}", api(get_media), methods=["GET"]),
        Route("/api/v1/statuses", api(post_status), methods=["POST"]),
        Route("/api/v1/statuses/{id}", api(get_status), methods=["GET"]),
        Route("/api/v1/statuses/{id}/source", api(get_status_source), methods=["GET"]),
        Route("/_emulator/statuses", control_statuses, methods=["GET"]),
        Route("/_emulator/faults", api(control_faults), methods=["PUT"]),
    ]
    app = Starlette(routes=routes)
    app.state.instance = state
    return app


def _with_query(uri: str, query: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode(query)
