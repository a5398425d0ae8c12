"""LinkedIn on loopback: the documented endpoints Crier uses for a member's posts and an
organization's (a company page's), and nothing else.

Written from LinkedIn's documentation (learn.microsoft.com: linkedin/shared/authentication
(authorization-code-flow, programmatic-refresh-tokens), sign-in-with-linkedin-v2
(`/v2/userinfo`), marketing/versioning, community-management/shares (posts-api,
images-api, little-text-format), community-management/organizations
(organization-access-control-by-role, organization-lookup-api),
shared/api-guide/concepts/error-handling and rate-limits),
and as strict as LinkedIn where it is strict:

- `GET /oauth/v2/authorization` shows a consent page for a known client, its exact
  redirect URI and known scopes that its products grant (else `unauthorized_scope_error`);
  approving redirects with `code` and `state`, cancelling with
  `error=user_cancelled_authorize`;
- `POST /oauth/v2/accessToken` (form-encoded, the client's id and secret in the form): a
  code is single-use, lives 30 minutes and must come with its redirect URI; the access
  token lives 60 days; clients enabled for programmatic refresh also get a refresh token
  that lives 365 days from the consent, which a refresh never extends;
- `GET /v2/userinfo` (scopes `openid profile`);
- `GET /rest/organizationAcls?q=roleAssignee` (scope `r_organization_admin` or
  `rw_organization_admin`): the token's member's roles on organizations, filtered by `role`
  and `state`, paged by `start` and `count` (at most 100); `GET /rest/organizations/{id}`;
- under `/rest`, every call must name an active `LinkedIn-Version` (`YYYYMM`; 400
  `VERSION_MISSING`, 426 `NONEXISTENT_VERSION`) and `X-Restli-Protocol-Version: 2.0.0`;
- an author (and an upload's owner) is the token's member (scope `w_member_social`) or an
  organization on which that member holds an approved ADMINISTRATOR, CONTENT_ADMINISTRATOR
  or DIRECT_SPONSORED_CONTENT_POSTER role (scope `w_organization_social`); else 403;
- `POST /rest/images?action=initializeUpload` for such an owner, then a PUT of the
  file to its `uploadUrl` (JPEG, PNG or GIF, with the member's token), `GET
  /rest/images/{urn}`;
- `POST /rest/videos?action=initializeUpload` (`fileSizeBytes`; upload instructions in
  parts of 4 MiB), a PUT of each part (answering its `ETag`), `?action=finalizeUpload`
  with every part's ETag in order, `GET /rest/videos/{urn}` until `AVAILABLE`;
- `POST /rest/posts` (JSON; `author`, `commentary`, `visibility`, `distribution` and
  `lifecycleState` required, unknown fields refused, 422 with LinkedIn's messages; the
  author as above; commentary at most 3,000 characters; images the author's and uploaded):
  201 with an empty body and the post's URN in `x-restli-id`. The same commentary as one of
  the author's posts is 422 `DUPLICATE_POST` naming that post;
- `GET /rest/socialActions/{urn}` (scope `w_member_social` or `r_organization_social`);
- `GET /rest/networkSizes/{organization urn}?edgeType=COMPANY_FOLLOWED_BY_MEMBER` (an
  organization scope): `{"firstDegreeSize"}`, the page's followers.

Errors are `{"status", "serviceErrorCode", "code", "message"}`. Rate limits are daily per
member and endpoint, with no headers: past the quota, 429.

Faults for tests and demos: `faults` (or `PUT /_emulator/faults`) can make the next posts
hang or fail with a 500 after they were stored, images take polls to process, or quotas
run out. `POST /_emulator/clients` registers a client; `POST /_emulator/organizations`
makes a page with its administrators; `GET /_emulator/posts` lists every post.
`crier emulator linkedin` runs one.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import secrets
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from itertools import count
from typing import Any
from urllib.parse import unquote

import regex
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from crier.kit.time import Clock, SystemClock
from crier.platforms.emulation import redirect_back, set_faults

CODE_TTL = timedelta(minutes=30)
ACCESS_TTL = timedelta(days=60)
REFRESH_TTL = timedelta(days=365)
SCOPES = frozenset(
    {
        "openid",
        "profile",
        "email",
        "w_member_social",
        "r_member_social",
        "w_organization_social",
        "r_organization_social",
        "rw_organization_admin",
        "r_organization_admin",
    }
)
SIGN_IN_AND_SHARE = frozenset({"openid", "profile", "email", "w_member_social"})
"""What the self-serve products Sign In with LinkedIn (OpenID Connect) and Share on
LinkedIn grant an app."""
COMMUNITY_MANAGEMENT = frozenset(
    {
        "w_member_social",
        "w_organization_social",
        "r_organization_social",
        "r_organization_admin",
        "rw_organization_admin",
    }
)
"""What the Community Management API grants the app it is the only product of."""
POSTING_ROLES = frozenset(
    {"ADMINISTRATOR", "CONTENT_ADMINISTRATOR", "DIRECT_SPONSORED_CONTENT_POSTER"}
)
"""The roles on an organization that let a member post for it."""
ACTIVE_VERSIONS = frozenset(f"{year}{month:02d}" for year in (2025, 2026) for month in range(1, 13))
"""The `LinkedIn-Version`s this emulator serves (fixed, whatever today's date)."""
POST_FIELDS = frozenset(
    {
        "author",
        "commentary",
        "visibility",
        "distribution",
        "lifecycleState",
        "isReshareDisabledByAuthor",
        "content",
        "contentLandingPage",
        "contentCallToActionLabel",
        "adContext",
        "container",
        "reshareContext",
    }
)
REQUIRED = ("author", "commentary", "visibility", "distribution", "lifecycleState")
VISIBILITIES = frozenset({"PUBLIC", "CONNECTIONS", "LOGGED_IN", "CONTAINER"})
_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a")
PART = 4 * 1024 * 1024
"""The size of each part of a video upload."""
_UNESCAPE = regex.compile(r"\\(.)")


def unescaped(commentary: str) -> str:
    """What a little text commentary shows."""
    return _UNESCAPE.sub(r"\1", commentary)


@dataclass
class Faults:
    hang_after_store: int = 0
    """The next posts are stored, then their call hangs for `hang_seconds`."""
    hang_seconds: float = 30.0
    fail_after_store: int = 0
    """The next posts are stored, then answered 500."""
    processing_polls: int = 0
    """Uploaded images stay PROCESSING for this many reads."""
    video_polls: int = 1
    """Finalized videos stay PROCESSING for this many reads."""
    daily_posts: int = 150
    """Posts per member per day (UTC)."""


@dataclass
class Client:
    client_id: str
    client_secret: str
    redirect_uris: list[str]
    refresh_tokens: bool = True
    """Whether LinkedIn enabled programmatic refresh for the app."""
    scopes: frozenset[str] = SCOPES
    """What its products grant (Sign In with OpenID Connect and Share on LinkedIn; the
    Community Management API, which LinkedIn grants only to an app with no other)."""
    name: str = "Crier"


@dataclass
class Member:
    id: str
    name: str


@dataclass
class Organization:
    id: int
    name: str
    vanity_name: str
    followers: int = 0
    """As members of the network follow the page."""

    @property
    def urn(self) -> str:
        return f"urn:li:organization:{self.id}"


@dataclass
class Acl:
    organization: str
    member_id: str
    role: str
    state: str = "APPROVED"


@dataclass
class Grant:
    client_id: str
    redirect_uri: str
    scopes: set[str]
    member_id: str
    expires_at: datetime


@dataclass
class Token:
    client_id: str
    member_id: str
    scopes: set[str]
    expires_at: datetime
    refresh: bool = False
    revoked: bool = False


@dataclass
class Image:
    urn: str
    owner: str
    uploaded: bool = False
    polls_left: int = 0


@dataclass
class Video:
    urn: str
    owner: str
    size: int
    parts: dict[int, bytes] = field(default_factory=dict)
    token: str = field(default_factory=lambda: secrets.token_urlsafe(8))
    finalized: bool = False
    polls_left: int = 0


@dataclass
class StoredPost:
    urn: str
    author: str
    commentary: str
    visibility: str
    images: list[dict[str, Any]]
    reshare_disabled: bool
    created_at: datetime

    @property
    def text(self) -> str:
        return unescaped(self.commentary)


@dataclass
class Network:
    """LinkedIn's state, in memory."""

    clock: Clock
    faults: Faults = field(default_factory=Faults)
    clients: dict[str, Client] = field(default_factory=dict)
    members: dict[str, Member] = field(default_factory=dict)
    organizations: dict[int, Organization] = field(default_factory=dict)
    acls: list[Acl] = field(default_factory=list)
    grants: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, Token] = field(default_factory=dict)
    images: dict[str, Image] = field(default_factory=dict)
    videos: dict[str, Video] = field(default_factory=dict)
    posts: dict[str, StoredPost] = field(default_factory=dict)
    calls: dict[tuple[str, str, str], int] = field(default_factory=dict)
    ids: Any = field(default_factory=lambda: count(7_300_000_000_000_000_000))

    def next_id(self) -> str:
        return str(next(self.ids))

    def register_client(
        self,
        redirect_uris: list[str],
        *,
        refresh_tokens: bool = True,
        client_id: str | None = None,
        scopes: frozenset[str] = SCOPES,
    ) -> Client:
        client = Client(
            client_id or secrets.token_hex(7),
            secrets.token_urlsafe(12),
            list(redirect_uris),
            refresh_tokens,
            scopes,
        )
        self.clients[client.client_id] = client
        return client

    def member_named(self, name: str) -> Member:
        for member in self.members.values():
            if member.name == name:
                return member
        member = Member(secrets.token_urlsafe(8).replace("-", "x").replace("_", "y"), name)
        self.members[member.id] = member
        return member

    def posts_of(self, member_id: str) -> list[StoredPost]:
        return self.posts_by(f"urn:li:person:{member_id}")

    def posts_by(self, author: str) -> list[StoredPost]:
        return [p for p in self.posts.values() if p.author == author]

    def add_organization(
        self, name: str, vanity_name: str, roles: dict[str, str] | None = None
    ) -> Organization:
        """A company page, and the roles members hold on it (member id: role)."""
        organization = Organization(int(next(self.ids)) % 100_000_000, name, vanity_name)
        self.organizations[organization.id] = organization
        for member_id, role in (roles or {}).items():
            self.acls.append(Acl(organization.urn, member_id, role))
        return organization

    def may_post_for(self, member_id: str, author: str) -> bool:
        """Whether the member holds an approved role on the organization that lets them post."""
        return any(
            a.organization == author
            and a.member_id == member_id
            and a.state == "APPROVED"
            and a.role in POSTING_ROLES
            for a in self.acls
        )


class Refused(Exception):
    def __init__(self, status: int, body: dict[str, Any]) -> None:
        super().__init__(str(body))
        self.status, self.body = status, body


def _refused(status: int, message: str, code: str | None = None, service: int = 0) -> Refused:
    body: dict[str, Any] = {"status": status, "message": message}
    if code:
        body["code"] = code
    if service:
        body["serviceErrorCode"] = service
    return Refused(status, body)


def _oauth(status: int, error: str, description: str) -> Refused:
    return Refused(status, {"error": error, "error_description": description})


def create_emulator_app(network: Network | None = None) -> Starlette:
    """LinkedIn over `network` (a fresh one when None)."""
    state = network or Network(SystemClock())

    def now() -> datetime:
        return state.clock.now()

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def member_of(request: Request, *scopes: str, any_of: frozenset[str] = frozenset()) -> Member:
        """The token's member, once the token is valid and has every one of `scopes` and
        one of `any_of`."""
        return caller(request, *scopes, any_of=any_of)[0]

    def caller(
        request: Request, *scopes: str, any_of: frozenset[str] = frozenset()
    ) -> tuple[Member, Token]:
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        token = state.tokens.get(value.strip()) if scheme.lower() == "bearer" else None
        if token is None or token.refresh:
            raise _refused(401, "Invalid access token", "INVALID_ACCESS_TOKEN", 65600)
        if token.revoked:
            raise _refused(
                401,
                "The token used in the request has been revoked by the user",
                "REVOKED_ACCESS_TOKEN",
                65601,
            )
        if token.expires_at <= now():
            raise _refused(401, "The token used in the request has expired", "EXPIRED_ACCESS_TOKEN")
        missing = set(scopes) - token.scopes
        if any_of and not any_of & token.scopes:
            missing |= {" or ".join(sorted(any_of))}
        if missing:
            raise _refused(
                403,
                f"Not enough permissions to access: {request.method} {request.url.path} "
                f"(missing {' '.join(sorted(missing))})",
                "ACCESS_DENIED",
                100,
            )
        return state.members[token.member_id], token

    def acts_for(member: Member, token: Token, author: Any) -> bool:
        """Whether the token may post (or upload) as `author`."""
        if author == f"urn:li:person:{member.id}":
            return "w_member_social" in token.scopes
        return (
            isinstance(author, str)
            and "w_organization_social" in token.scopes
            and state.may_post_for(member.id, author)
        )

    def versioned(request: Request) -> None:
        version = request.headers.get("linkedin-version")
        if not version:
            raise _refused(
                400,
                "A version must be present. Please specify a version by adding the "
                "LinkedIn-Version header.",
                "VERSION_MISSING",
            )
        if version not in ACTIVE_VERSIONS:
            raise _refused(426, f"Requested version {version} is not active", "NONEXISTENT_VERSION")
        if request.headers.get("x-restli-protocol-version") != "2.0.0":
            raise _refused(
                400,
                "Rest.li protocol version 2.0.0 is required (X-Restli-Protocol-Version)",
                "ILLEGAL_ARGUMENT",
            )

    def quota(member: Member, endpoint: str, limit: int) -> None:
        key = (member.id, endpoint, now().date().isoformat())
        used = state.calls.get(key, 0)
        if used >= limit:
            raise _refused(
                429,
                "Resource level throttle APPLICATION DAY limit for calls to this "
                "resource is reached.",
                "TOO_MANY_REQUESTS",
            )
        state.calls[key] = used + 1

    def api(handler: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                response: Response = await handler(request)
            except Refused as refused:
                response = JSONResponse(refused.body, status_code=refused.status)
            return response

        return wrapped

    async def json_body(request: Request) -> dict[str, Any]:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise _refused(
                400, "Request body could not be converted to data map", "ILLEGAL_ARGUMENT"
            )
        try:
            body = await request.json()
        except ValueError:
            raise _refused(
                400, "Request body could not be converted to data map", "ILLEGAL_ARGUMENT"
            ) from None
        if not isinstance(body, dict):
            raise _refused(
                400, "Request body could not be converted to data map", "ILLEGAL_ARGUMENT"
            )
        return body

    # OAuth 2.0

    def authorization(params: dict[str, str]) -> tuple[Client, str]:
        client = state.clients.get(params.get("client_id", ""))
        redirect_uri = params.get("redirect_uri", "")
        if client is None:
            raise _oauth(400, "invalid_client_id", "The passed in client_id is invalid")
        if redirect_uri not in client.redirect_uris:
            raise _oauth(
                400,
                "invalid_redirect_uri",
                "The redirect_uri does not match the registered value",
            )
        return client, redirect_uri

    def problem_of(client: Client, params: dict[str, str]) -> tuple[str, str] | None:
        scopes = set(params.get("scope", "").split())
        if params.get("response_type") != "code":
            return "unsupported_response_type", "response_type must be code"
        if not scopes or scopes - SCOPES:
            return "invalid_scope", "Scope is not authorized for your application"
        if ungranted := sorted(scopes - client.scopes):
            return (
                "unauthorized_scope_error",
                f'Scope "{ungranted[0]}" is not authorized for your application',
            )
        return None

    async def authorize_page(request: Request) -> Response:
        params = dict(request.query_params)
        try:
            client, redirect_uri = authorization(params)
        except Refused as refused:
            return HTMLResponse(
                f"<h1>Bummer, something went wrong.</h1><p>{refused.body['error_description']}</p>",
                400,
            )
        problem = problem_of(client, params)
        if problem is not None:
            error, description = problem
            return redirect_back(
                redirect_uri,
                {"error": error, "error_description": description, "state": params.get("state")},
            )
        hidden = "".join(
            f'<input type="hidden" name="{_attr(k)}" value="{_attr(v)}">' for k, v in params.items()
        )
        return HTMLResponse(
            "<!doctype html><title>LinkedIn</title>"
            f"<h1>{_attr(client.name)} would like to access your LinkedIn account</h1>"
            f'<form method="post" action="/oauth/v2/authorization">{hidden}'
            '<label>Name <input name="member" value="Ada Lovelace"></label>'
            '<button name="decision" value="allow">Allow</button>'
            '<button name="decision" value="cancel">Cancel</button></form>'
        )

    async def authorize_decision(request: Request) -> Response:
        async with request.form() as form:
            params = {k: v for k, v in form.items() if isinstance(v, str)}
        client, redirect_uri = authorization(params)
        problem = problem_of(client, params)
        if problem is not None or params.get("decision") != "allow":
            error, description = problem or (
                "user_cancelled_authorize",
                "The user cancelled the authorization",
            )
            return redirect_back(
                redirect_uri,
                {"error": error, "error_description": description, "state": params.get("state")},
            )
        member = state.member_named(params.get("member") or "Ada Lovelace")
        code = secrets.token_urlsafe(48)
        state.grants[code] = Grant(
            client.client_id,
            redirect_uri,
            set(params["scope"].split()),
            member.id,
            now() + CODE_TTL,
        )
        return redirect_back(redirect_uri, {"code": code, "state": params.get("state")})

    def issue(
        client: Client, member_id: str, scopes: set[str], refresh_ends: datetime | None
    ) -> dict[str, Any]:
        access = secrets.token_urlsafe(48)
        state.tokens[access] = Token(client.client_id, member_id, scopes, now() + ACCESS_TTL)
        answer: dict[str, Any] = {
            "access_token": access,
            "expires_in": int(ACCESS_TTL.total_seconds()),
            "scope": ",".join(sorted(scopes)),
        }
        if client.refresh_tokens:
            ends = refresh_ends or now() + REFRESH_TTL
            refresh = secrets.token_urlsafe(48)
            state.tokens[refresh] = Token(client.client_id, member_id, scopes, ends, refresh=True)
            answer["refresh_token"] = refresh
            answer["refresh_token_expires_in"] = int((ends - now()).total_seconds())
        return answer

    async def access_token(request: Request) -> Response:
        if not request.headers.get("content-type", "").startswith(
            "application/x-www-form-urlencoded"
        ):
            raise _oauth(400, "invalid_request", 'A required parameter "grant_type" is missing')
        async with request.form() as form:
            params = {k: v for k, v in form.items() if isinstance(v, str)}
        client = state.clients.get(params.get("client_id", ""))
        if client is None or not secrets.compare_digest(
            client.client_secret, params.get("client_secret", "")
        ):
            raise _oauth(401, "invalid_client", "Client authentication failed")
        grant_type = params.get("grant_type")
        if grant_type == "authorization_code":
            grant = state.grants.pop(params.get("code", ""), None)
            if (
                grant is None
                or grant.client_id != client.client_id
                or grant.expires_at <= now()
                or grant.redirect_uri != params.get("redirect_uri")
            ):
                raise _oauth(
                    400,
                    "invalid_request",
                    "Unable to retrieve access token: appid/redirect uri/code verifier does "
                    "not match authorization code. Or authorization code expired.",
                )
            return JSONResponse(issue(client, grant.member_id, grant.scopes, None))
        if grant_type == "refresh_token":
            found = state.tokens.get(params.get("refresh_token", ""))
            if (
                found is None
                or not found.refresh
                or found.revoked
                or found.expires_at <= now()
                or found.client_id != client.client_id
            ):
                raise _oauth(
                    400,
                    "invalid_request",
                    "The provided authorization grant or refresh token is invalid, expired or "
                    "revoked.",
                )
            found.revoked = True  # the new answer carries the same life, not a longer one
            return JSONResponse(issue(client, found.member_id, found.scopes, found.expires_at))
        raise _oauth(400, "unsupported_grant_type", "grant_type is not supported")

    async def userinfo(request: Request) -> Response:
        member = member_of(request, "openid", "profile")
        given, _, family = member.name.partition(" ")
        return JSONResponse(
            {
                "sub": member.id,
                "name": member.name,
                "given_name": given,
                "family_name": family,
                "locale": {"country": "US", "language": "en"},
            }
        )

    # Images

    def uploader(member: Member, token: Token, owner: Any) -> str:
        """The owner of an upload, which the token must act for."""
        if not acts_for(member, token, owner):
            raise _refused(403, f"Not enough permissions to upload for {owner}", "ACCESS_DENIED")
        return str(owner)

    writer = frozenset({"w_member_social", "w_organization_social"})

    async def initialize_upload(request: Request) -> Response:
        versioned(request)
        member, token = caller(request, any_of=writer)
        if request.query_params.get("action") != "initializeUpload":
            raise _refused(400, "action must be initializeUpload", "ILLEGAL_ARGUMENT")
        body = await json_body(request)
        owner = (body.get("initializeUploadRequest") or {}).get("owner")
        owner = uploader(member, token, owner)
        image = Image(f"urn:li:image:{state.next_id()}", owner)
        state.images[image.urn] = image
        return JSONResponse(
            {
                "value": {
                    "uploadUrlExpiresAt": int((now() + timedelta(days=1)).timestamp() * 1000),
                    "uploadUrl": f"{base(request)}/dms-uploads/{quote_urn(image.urn)}",
                    "image": image.urn,
                }
            }
        )

    async def upload(request: Request) -> Response:
        member, token = caller(request, any_of=writer)
        image = state.images.get(unquote(request.path_params["urn"]))
        if image is None or not acts_for(member, token, image.owner):
            raise _refused(404, "No upload is expected here", "NOT_FOUND")
        content = await request.body()
        if not content.startswith(_MAGIC):
            raise _refused(400, "The file is not a JPEG, PNG or GIF image", "ILLEGAL_ARGUMENT")
        image.uploaded = True
        image.polls_left = state.faults.processing_polls
        return Response(status_code=201)

    async def get_image(request: Request) -> Response:
        versioned(request)
        member, token = caller(request, any_of=writer)
        image = state.images.get(unquote(request.path_params["urn"]))
        if image is None or not acts_for(member, token, image.owner):
            raise _refused(404, "Image not found", "NOT_FOUND")
        if not image.uploaded:
            status = "WAITING_UPLOAD"
        elif image.polls_left > 0:
            image.polls_left -= 1
            status = "PROCESSING"
        else:
            status = "AVAILABLE"
        return JSONResponse({"id": image.urn, "owner": image.owner, "status": status})

    # Videos

    def own_video(member: Member, token: Token, urn: str) -> Video:
        video = state.videos.get(unquote(urn))
        if video is None or not acts_for(member, token, video.owner):
            raise _refused(404, "Video not found", "NOT_FOUND")
        return video

    async def videos_action(request: Request) -> Response:
        versioned(request)
        member, token = caller(request, any_of=writer)
        action = request.query_params.get("action")
        body = await json_body(request)
        if action == "initializeUpload":
            asked = body.get("initializeUploadRequest") or {}
            owner, size = asked.get("owner"), asked.get("fileSizeBytes")
            owner = uploader(member, token, owner)
            if not isinstance(size, int) or not 75 * 1024 <= size <= 500 * 1024 * 1024:
                raise _refused(422, "ERROR :: /fileSizeBytes :: must be 75 KB to 500 MB")
            video = Video(f"urn:li:video:{state.next_id()}", owner, size)
            state.videos[video.urn] = video
            steps = [
                {
                    "uploadUrl": f"{base(request)}/dms-uploads/{quote_urn(video.urn)}/{i}",
                    "firstByte": start,
                    "lastByte": min(start + PART, size) - 1,
                }
                for i, start in enumerate(range(0, size, PART))
            ]
            return JSONResponse(
                {
                    "value": {
                        "uploadUrlsExpireAt": int((now() + timedelta(days=1)).timestamp() * 1000),
                        "video": video.urn,
                        "uploadInstructions": steps,
                        "uploadToken": video.token,
                    }
                }
            )
        if action == "finalizeUpload":
            asked = body.get("finalizeUploadRequest") or {}
            video = own_video(member, token, str(asked.get("video", "")))
            etags = [_etag(video.parts[i]) for i in sorted(video.parts)]
            expected = -(-video.size // PART)
            if (
                asked.get("uploadToken") != video.token
                or len(video.parts) != expected
                or asked.get("uploadedPartIds") != etags
            ):
                raise _refused(400, "The upload is incomplete or its part ids do not match")
            content = b"".join(video.parts[i] for i in sorted(video.parts))
            if len(content) != video.size or content[4:8] != b"ftyp":
                raise _refused(400, "The file is not an MP4 video of the declared size")
            video.finalized = True
            video.polls_left = state.faults.video_polls
            return Response(status_code=200)
        raise _refused(400, "action must be initializeUpload or finalizeUpload", "ILLEGAL_ARGUMENT")

    async def upload_part(request: Request) -> Response:
        member, token = caller(request, any_of=writer)
        video = own_video(member, token, request.path_params["urn"])
        part = int(request.path_params["part"])
        if video.finalized or part * PART >= video.size:
            raise _refused(400, "No such part of this upload", "ILLEGAL_ARGUMENT")
        content = await request.body()
        if len(content) != min(PART, video.size - part * PART):
            raise _refused(400, "The part's size is not the one asked for", "ILLEGAL_ARGUMENT")
        video.parts[part] = content
        return Response(status_code=200, headers={"ETag": _etag(content)})

    async def get_video(request: Request) -> Response:
        versioned(request)
        video = own_video(*caller(request, any_of=writer), request.path_params["urn"])
        if not video.finalized:
            status = "WAITING_UPLOAD"
        elif video.polls_left > 0:
            video.polls_left -= 1
            status = "PROCESSING"
        else:
            status = "AVAILABLE"
        return JSONResponse({"id": video.urn, "owner": video.owner, "status": status})

    # Posts

    def checked_post(member: Member, token: Token, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The post's images, once the post is as LinkedIn requires."""
        problems = [
            f"ERROR :: /{name} :: unrecognized field found but not allowed"
            for name in sorted(set(body) - POST_FIELDS)
        ] + [
            f"ERROR :: /{name} :: field is required but not found and has no default value"
            for name in REQUIRED
            if name not in body
        ]
        if problems:
            raise _refused(422, "\n".join(problems) + "\n")
        if not acts_for(member, token, body["author"]):
            raise _refused(
                403, "Unpermitted fields present in REQUEST_BODY: author", "ACCESS_DENIED"
            )
        commentary = body["commentary"]
        if not isinstance(commentary, str) or len(unescaped(commentary)) > 3000:
            raise _refused(422, "ERROR :: /commentary :: length must be at most 3000\n")
        if body["visibility"] not in VISIBILITIES:
            raise _refused(422, f'ERROR :: /visibility :: "{body["visibility"]}" is not an enum')
        if body["lifecycleState"] not in ("PUBLISHED", "DRAFT"):
            raise _refused(422, "ERROR :: /lifecycleState :: not a valid state\n")
        distribution = body["distribution"]
        if not isinstance(distribution, dict) or "feedDistribution" not in distribution:
            raise _refused(422, "ERROR :: /distribution/feedDistribution :: field is required")
        content = body.get("content") or {}
        images: list[dict[str, Any]] = []
        if "media" in content:
            images = [content["media"]]
        elif "multiImage" in content:
            images = list((content["multiImage"] or {}).get("images") or [])
            if not 2 <= len(images) <= 20:
                raise _refused(422, "ERROR :: /content/multiImage/images :: 2 to 20 images")
        for attached in images:
            media_id = str((attached or {}).get("id"))
            if media_id.startswith("urn:li:video:"):
                video = state.videos.get(media_id)
                if video is None or video.owner != body["author"] or not video.finalized:
                    raise _refused(422, f"ERROR :: /content :: {media_id} is not an uploaded video")
                if "multiImage" in content:
                    raise _refused(422, "ERROR :: /content/multiImage :: images only")
                continue
            image = state.images.get(media_id)
            if image is None or image.owner != body["author"] or not image.uploaded:
                raise _refused(
                    422, f"ERROR :: /content :: {attached.get('id')} is not an uploaded image"
                )
            if len(str(attached.get("altText") or "")) > 4086:
                raise _refused(422, "ERROR :: /content :: altText is longer than 4086")
        return images

    async def create_post(request: Request) -> Response:
        versioned(request)
        member, token = caller(request, any_of=writer)
        body = await json_body(request)
        images = checked_post(member, token, body)
        quota(member, "posts", state.faults.daily_posts)
        for earlier in state.posts_by(body["author"]):
            if earlier.commentary == body["commentary"]:
                raise Refused(
                    422,
                    {
                        "errorDetailType": "com.linkedin.common.error.BadRequest",
                        "message": f"Content is a duplicate of {earlier.urn}",
                        "errorDetails": {
                            "inputErrors": [
                                {
                                    "description": "Duplicate post is detected",
                                    "input": {},
                                    "code": "DUPLICATE_POST",
                                }
                            ]
                        },
                        "status": 422,
                    },
                )
        post = StoredPost(
            f"urn:li:share:{state.next_id()}",
            body["author"],
            body["commentary"],
            body["visibility"],
            images,
            bool(body.get("isReshareDisabledByAuthor")),
            now(),
        )
        state.posts[post.urn] = post
        if state.faults.hang_after_store > 0:
            state.faults.hang_after_store -= 1
            await asyncio.sleep(state.faults.hang_seconds)
        if state.faults.fail_after_store > 0:
            state.faults.fail_after_store -= 1
            raise _refused(500, "Internal Server Error", "INTERNAL_SERVER_ERROR")
        return Response(status_code=201, headers={"x-restli-id": post.urn})

    async def social_actions(request: Request) -> Response:
        versioned(request)
        member_of(request, any_of=frozenset({"w_member_social", "r_organization_social"}))
        urn = unquote(request.path_params["urn"])
        if urn not in state.posts:
            raise _refused(404, f"Not Found: {urn}", "NOT_FOUND")
        return JSONResponse(
            {
                "target": urn,
                "likesSummary": {"totalLikes": 0, "likedByCurrentUser": False},
                "commentsSummary": {"aggregatedTotalComments": 0, "totalFirstLevelComments": 0},
            }
        )

    async def network_sizes(request: Request) -> Response:
        versioned(request)
        member_of(
            request,
            any_of=frozenset(
                {"r_organization_social", "r_organization_admin", "rw_organization_admin"}
            ),
        )
        urn = unquote(request.path_params["urn"])
        if request.query_params.get("edgeType") != "COMPANY_FOLLOWED_BY_MEMBER":
            raise _refused(400, "edgeType must be COMPANY_FOLLOWED_BY_MEMBER", "ILLEGAL_ARGUMENT")
        number = urn.removeprefix("urn:li:organization:")
        found = state.organizations.get(int(number)) if number.isdigit() else None
        if not urn.startswith("urn:li:organization:") or found is None:
            raise _refused(404, f"Not Found: {urn}", "NOT_FOUND")
        return JSONResponse({"firstDegreeSize": found.followers})

    # Organizations

    async def organization_acls(request: Request) -> Response:
        versioned(request)
        member = member_of(
            request, any_of=frozenset({"r_organization_admin", "rw_organization_admin"})
        )
        params = request.query_params
        if params.get("q") != "roleAssignee":
            raise _refused(400, "q must be roleAssignee", "ILLEGAL_ARGUMENT")
        try:
            start = int(params.get("start", "0"))
            size = int(params.get("count", "10"))
        except ValueError:
            raise _refused(400, "start and count must be integers", "ILLEGAL_ARGUMENT") from None
        if start < 0 or not 1 <= size <= 100:
            raise _refused(400, "count must be 1 to 100", "ILLEGAL_ARGUMENT")
        found = [
            a
            for a in state.acls
            if a.member_id == member.id
            and params.get("role", a.role) == a.role
            and params.get("state", a.state) == a.state
        ]
        return JSONResponse(
            {
                "paging": {"count": size, "start": start, "total": len(found), "links": []},
                "elements": [
                    {
                        "roleAssignee": f"urn:li:person:{a.member_id}",
                        "state": a.state,
                        "role": a.role,
                        "organization": a.organization,
                    }
                    for a in found[start : start + size]
                ],
            }
        )

    async def get_organization(request: Request) -> Response:
        versioned(request)
        member_of(request)
        organization = state.organizations.get(request.path_params["id"])
        if organization is None:
            raise _refused(404, "Not Found", "NOT_FOUND")
        return JSONResponse(
            {
                "id": organization.id,
                "localizedName": organization.name,
                "vanityName": organization.vanity_name,
                "name": {
                    "localized": {"en_US": organization.name},
                    "preferredLocale": {"country": "US", "language": "en"},
                },
            }
        )

    # Control

    async def control_posts(request: Request) -> Response:
        return JSONResponse(
            {
                "data": [
                    asdict(p) | {"created_at": p.created_at.isoformat(), "text": p.text}
                    for p in state.posts.values()
                ]
            }
        )

    async def control_clients(request: Request) -> Response:
        body = await json_body(request)
        uris = body.get("redirect_uris")
        if not isinstance(uris, list) or not uris:
            raise _refused(400, "redirect_uris: a list of callback URLs")
        scopes = body.get("scopes", sorted(SCOPES))
        if not isinstance(scopes, list) or set(map(str, scopes)) - SCOPES:
            raise _refused(400, f"scopes: a list of {', '.join(sorted(SCOPES))}")
        client = state.register_client(
            [str(u) for u in uris],
            refresh_tokens=bool(body.get("refresh_tokens", True)),
            scopes=frozenset(map(str, scopes)),
        )
        return JSONResponse(asdict(client) | {"scopes": sorted(client.scopes)}, status_code=201)

    async def control_organizations(request: Request) -> Response:
        body = await json_body(request)
        name, vanity, admins = body.get("name"), body.get("vanity_name"), body.get("admins")
        if not isinstance(name, str) or not isinstance(vanity, str) or not isinstance(admins, list):
            raise _refused(400, "name, vanity_name and admins (member names) are required")
        roles = {state.member_named(str(n)).id: "ADMINISTRATOR" for n in admins}
        organization = state.add_organization(name, vanity, roles)
        return JSONResponse(asdict(organization) | {"urn": organization.urn}, status_code=201)

    async def control_faults(request: Request) -> Response:
        body = await json_body(request)
        unknown = set_faults(state.faults, body)
        if unknown is not None:
            raise _refused(400, f"unknown fault {unknown}")
        return JSONResponse(asdict(state.faults))

    routes = [
        Route("/oauth/v2/authorization", authorize_page, methods=["GET"]),
        Route("/oauth/v2/authorization", api(authorize_decision), methods=["POST"]),
        Route("/oauth/v2/accessToken", api(access_token), methods=["POST"]),
        Route("/v2/userinfo", api(userinfo), methods=["GET"]),
        Route("/rest/images", api(initialize_upload), methods=["POST"]),
        Route("/rest/images/{urn}", api(get_image), methods=["GET"]),
        Route("/dms-uploads/{urn}", api(upload), methods=["PUT"]),
        Route("/dms-uploads/{urn}/{part:int}", api(upload_part), methods=["PUT"]),
        Route("/rest/videos", api(videos_action), methods=["POST"]),
        Route("/rest/videos/{urn}", api(get_video), methods=["GET"]),
        Route("/rest/posts", api(create_post), methods=["POST"]),
        Route("/rest/socialActions/{urn}", api(social_actions), methods=["GET"]),
        Route("/rest/networkSizes/{urn}", api(network_sizes), methods=["GET"]),
        Route("/rest/organizationAcls", api(organization_acls), methods=["GET"]),
        Route("/rest/organizations/{id:int}", api(get_organization), methods=["GET"]),
        Route("/_emulator/organizations", api(control_organizations), methods=["POST"]),
        Route("/_emulator/posts", control_posts, methods=["GET"]),
        Route("/_emulator/clients", api(control_clients), methods=["POST"]),
        Route("/_emulator/faults", api(control_faults), methods=["PUT"]),
    ]
    app = Starlette(routes=routes)
    app.state.network = state
    return app


def _etag(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


def quote_urn(urn: str) -> str:
    return urn.replace(":", "%3A")


def _attr(value: str) -> str:
    return html.escape(value, quote=True)
