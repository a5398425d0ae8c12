"""Crier's adapter for LinkedIn: a member's own posts and a company page's, through the
Posts API (learn.microsoft.com: linkedin/shared/authentication/authorization-code-flow,
programmatic-refresh-tokens; linkedin/consumer/integrations/self-serve/sign-in-with-linkedin-v2;
linkedin/marketing/community-management/shares/posts-api, images-api; organizations/
organization-access-control-by-role, organization-lookup-api; versioning).

Members connect by LinkedIn's 3-legged OAuth (authorization code and `state`; LinkedIn
keeps PKCE for native apps), through the app of this server's settings, which
authenticates with its client secret (pages may go through a second app: LinkedIn grants
the Community Management API only to an app with no other product). The identity comes
from OpenID Connect's `/v2/userinfo`: the member is `urn:li:person:{sub}`. A company page
connects through the consent of a member who may post for it (an approved administrator,
content administrator or sponsored content poster role, read from `organizationAcls`),
with the Community Management API's scopes; the page, `urn:li:organization:{id}`, is then
the account and the author of its posts. An access token lives 60 days; apps LinkedIn has
enabled for programmatic refresh also get a refresh token whose life (365 days) runs from
the first consent and is never extended: the account shows then that it
must be reconnected (`reconnect_by`).

Every call to `/rest` names the API version (`LinkedIn-Version`, a setting) and Rest.li
2.0. A post is created with `POST /rest/posts`, whose id comes back in `x-restli-id`.
LinkedIn has no idempotency key and member posts cannot be listed without a restricted
permission, but LinkedIn refuses a post that repeats one of the member's (422
`DUPLICATE_POST`) and names the one it has: a resend of a delivery whose outcome is
unknown is settled by that post, so it is never made twice. Images go up first
(`initializeUpload`, then a PUT of the file) and are attached with their alt text.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import regex

from crier.kit.storage import Storage
from crier.kit.time import Clock, SystemClock
from crier.platforms.base import (
    Account,
    AppCredentials,
    Consent,
    MediaRef,
    Prepared,
    Published,
    Tokens,
)
from crier.platforms.calls import (
    call,
    json_object,
    media_bytes,
    seconds_after,
    throttled_or_failed,
)
from crier.platforms.errors import ErrorCode, OrganizationRefused, PlatformError
from crier.platforms.linkedin.rules import escape

SCOPES = "openid profile w_member_social"
"""The member's identity, and posting as the member."""
ORGANIZATION_SCOPES = "w_organization_social r_organization_social r_organization_admin"
"""Posting as the pages the member manages, reading their posts' counts, and listing them."""
ORGANIZATION = "urn:li:organization:"
POSTING_ROLES = frozenset(
    {"ADMINISTRATOR", "CONTENT_ADMINISTRATOR", "DIRECT_SPONSORED_CONTENT_POSTER"}
)
"""The roles on a page that let a member post for it."""
ACL_PAGE = 100
MAX_ACL_PAGES = 10
"""How many pages of a member's roles are read at most (1,000 organizations)."""
RESTLI = "2.0.0"
IMAGE_POLLS = 10
"""How many times an image still processing is asked about before the post goes anyway."""
VIDEO_POLLS = 60
"""How many times a video still processing is asked about before the send is retried."""
_DUPLICATE = regex.compile(r"urn:li:(?:share|ugcPost):\d+")
_REVOKED = frozenset({"REVOKED_ACCESS_TOKEN"})


class LinkedInAdapter:
    platform = "linkedin"
    registers_apps = False
    organizations = True
    scopes = SCOPES
    keys_kept = timedelta(hours=24)
    """How long a resend can count on LinkedIn's duplicate refusal (how long it remembers
    is not documented): a post whose outcome is unknown is not sent again after that."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        storage: Storage,
        *,
        client_id: str | None,
        client_secret: str | None,
        pages_client_id: str | None = None,
        pages_client_secret: str | None = None,
        api_url: str = "https://api.linkedin.com",
        oauth_url: str = "https://www.linkedin.com/oauth/v2",
        version: str = "202611",
        web_url: str = "https://www.linkedin.com",
        clock: Clock | None = None,
        poll_interval: float = 1.0,
    ) -> None:
        self._http = http
        self._storage = storage
        self._client_id = client_id or ""
        self._client_secret = client_secret or ""
        self._pages_app = (
            (pages_client_id, pages_client_secret)
            if pages_client_id and pages_client_secret
            else (self._client_id, self._client_secret)
        )
        self._api = api_url.rstrip("/")
        self._oauth = oauth_url.rstrip("/")
        self._version = version
        self._web = web_url.rstrip("/")
        self._clock = clock or SystemClock()
        self._poll_interval = poll_interval

    def configured(self) -> bool:
        return bool(self._client_id and self._client_secret)

    async def server(self, given: str | None) -> str | None:
        return None  # one network, at the configured address

    async def register_app(self, server_url: str, redirect_uri: str) -> AppCredentials:
        raise PlatformError(ErrorCode.INVALID_REQUEST, "LinkedIn's app comes from the settings")

    def authorize_url(self, consent: Consent) -> str:
        query = {
            "response_type": "code",
            "client_id": self._app(bool(consent.organization))[0],
            "redirect_uri": consent.redirect_uri,
            "state": consent.state,
            "scope": ORGANIZATION_SCOPES if consent.organization else SCOPES,
        }
        return f"{self._oauth}/authorization?{urlencode(query)}"

    async def exchange(self, consent: Consent, code: str) -> Tokens:
        token = await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": consent.redirect_uri,
            },
            pages=bool(consent.organization),
        )
        access = str(token["access_token"])
        if consent.organization:
            external_id, handle, name = await self._organization(access, consent.organization)
        else:
            response = await call(self._http, "GET", f"{self._api}/v2/userinfo", token=access)
            me = _body(response, self._clock.now())
            external_id, handle = str(me["sub"]), str(me.get("name") or me["sub"])
            name = me.get("name") or None
        expires_at = self._after(token.get("expires_in"))
        refresh_ends = self._after(token.get("refresh_token_expires_in"))
        return Tokens(
            access_token=access,
            refresh_token=str(token["refresh_token"]) if token.get("refresh_token") else None,
            expires_at=expires_at,
            external_id=external_id,
            handle=handle,
            display_name=name,
            reconnect_by=refresh_ends or expires_at,
        )

    async def _organization(self, access: str, asked: str) -> tuple[str, str, str | None]:
        """The page asked for (by id, URN or vanity name) among those the member may post
        for: its URN, vanity name and name. `OrganizationRefused` if it is not one."""
        account = Account(access)
        wanted = asked.removeprefix(ORGANIZATION).lower()
        allowed: list[str] = []
        for urn in await self._postable(account):
            number = urn.removeprefix(ORGANIZATION)
            found = _body(
                await self._rest("GET", f"/rest/organizations/{quote(number)}", account),
                self._clock.now(),
            )
            vanity = str(found.get("vanityName") or number)
            if wanted in (number, vanity.lower()):
                return urn, vanity, found.get("localizedName") or vanity
            allowed.append(vanity)
        raise OrganizationRefused(asked, allowed)

    async def _postable(self, account: Account) -> list[str]:
        """The URNs of the organizations on which the member holds an approved role that
        lets them post, read page by page."""
        urns: list[str] = []
        for page in range(MAX_ACL_PAGES):
            query = urlencode(
                {
                    "q": "roleAssignee",
                    "state": "APPROVED",
                    "start": page * ACL_PAGE,
                    "count": ACL_PAGE,
                }
            )
            body = _body(
                await self._rest("GET", f"/rest/organizationAcls?{query}", account),
                self._clock.now(),
            )
            elements = body.get("elements") or []
            urns += [
                str(e["organization"])
                for e in elements
                if e.get("role") in POSTING_ROLES
                and str(e.get("organization", "")).startswith(ORGANIZATION)
                and str(e["organization"]) not in urns
            ]
            if len(elements) < ACL_PAGE:
                break
        return urns

    async def refresh(
        self, refresh_token: str, server_url: str | None, external_id: str = ""
    ) -> Tokens:
        token = await self._token(
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            pages=external_id.startswith(ORGANIZATION),
        )
        return Tokens(
            access_token=str(token["access_token"]),
            refresh_token=str(token.get("refresh_token") or refresh_token),
            expires_at=self._after(token.get("expires_in")),
            external_id="",
            handle="",
            reconnect_by=self._after(token.get("refresh_token_expires_in")),
        )

    async def revoke(self, account: Account, app: AppCredentials | None) -> None:
        """LinkedIn offers no revocation to apps like this one: the member removes Crier
        in their LinkedIn settings; Crier erases the tokens."""

    async def publish(self, account: Account, post: Prepared, idempotency_key: str) -> Published:
        author = _author(account)
        images = [
            await (self._upload_video if m.kind == "video" else self._upload)(account, author, m)
            for m in post.media
        ]
        body: dict[str, Any] = {
            "author": author,
            "commentary": escape(post.text),
            "visibility": post.settings.get("visibility") or "PUBLIC",
            "distribution": {
                "feedDistribution": "MAIN_FEED",
                "targetEntities": [],
                "thirdPartyDistributionChannels": [],
            },
            "lifecycleState": "PUBLISHED",
            "isReshareDisabledByAuthor": bool(post.settings.get("disable_reshare")),
        }
        if len(images) == 1:
            body["content"] = {"media": images[0]}
        elif images:
            body["content"] = {"multiImage": {"images": images}}
        response = await self._rest("POST", "/rest/posts", account, sends=True, json=body)
        urn = response.headers.get("x-restli-id", "")
        if not urn:
            raise PlatformError(
                ErrorCode.PLATFORM_UNAVAILABLE,
                "LinkedIn answered without the post's id (x-restli-id)",
                may_have_succeeded=True,
            )
        return Published(urn, self._permalink(urn), self._clock.now())

    async def find(
        self,
        account: Account,
        idempotency_key: str,
        post: Prepared | None = None,
        since: datetime | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> Published | None:
        """A member's posts cannot be listed without a restricted permission: the resend
        is the look-up (LinkedIn answers it with the post it has)."""
        return None

    async def metrics(self, account: Account, external_id: str) -> dict[str, int]:
        response = await self._rest("GET", f"/rest/socialActions/{quote(external_id)}", account)
        body = _body(response, self._clock.now())
        likes = body.get("likesSummary") or {}
        comments = body.get("commentsSummary") or {}
        return {
            "likes": int(likes.get("totalLikes", 0)),
            "comments": int(comments.get("aggregatedTotalComments", 0)),
        }

    async def account_metrics(self, account: Account) -> dict[str, int]:
        """A page's followers; a member's network size needs a partner program, so members
        have none."""
        if not account.external_id.startswith(ORGANIZATION):
            return {}
        response = await self._rest(
            "GET",
            f"/rest/networkSizes/{quote(account.external_id)}?edgeType=COMPANY_FOLLOWED_BY_MEMBER",
            account,
        )
        return {"followers": int(_body(response, self._clock.now()).get("firstDegreeSize", 0))}

    async def _upload(self, account: Account, owner: str, media: MediaRef) -> dict[str, Any]:
        """Upload one image; what the post attaches (`id`, `altText`)."""
        content = await media_bytes(self._storage, media)
        begun = _body(
            await self._rest(
                "POST",
                "/rest/images?action=initializeUpload",
                account,
                media=True,
                json={"initializeUploadRequest": {"owner": owner}},
            ),
            self._clock.now(),
            media=True,
        )
        value = begun.get("value") or {}
        urn, upload_url = str(value.get("image", "")), str(value.get("uploadUrl", ""))
        if not urn or not upload_url:
            raise PlatformError(ErrorCode.PLATFORM_UNAVAILABLE, "LinkedIn gave no upload URL")
        put = await call(
            self._http,
            "PUT",
            upload_url,
            token=account.access_token,
            content=content,
            headers={"Content-Type": media.content_type},
        )
        if not put.is_success:
            raise _error(put, self._clock.now(), media=True)
        for _ in range(IMAGE_POLLS):
            state = _body(
                await self._rest("GET", f"/rest/images/{quote(urn)}", account, media=True),
                self._clock.now(),
                media=True,
            )
            status = state.get("status")
            if status == "AVAILABLE":
                break
            if status == "PROCESSING_FAILED":
                raise PlatformError(ErrorCode.MEDIA_REJECTED, "LinkedIn could not process it")
            await asyncio.sleep(self._poll_interval)
        attached: dict[str, Any] = {"id": urn}
        if media.alt_text:
            attached["altText"] = media.alt_text
        return attached

    async def _upload_video(self, account: Account, owner: str, media: MediaRef) -> dict[str, Any]:
        """Upload a video in the parts LinkedIn asks for, finalize it with their ETags, and
        wait until LinkedIn has processed it; what the post attaches (`id`)."""
        content = await media_bytes(self._storage, media)
        now = self._clock.now
        begun = _body(
            await self._rest(
                "POST",
                "/rest/videos?action=initializeUpload",
                account,
                media=True,
                json={
                    "initializeUploadRequest": {
                        "owner": owner,
                        "fileSizeBytes": len(content),
                        "uploadCaptions": False,
                        "uploadThumbnail": False,
                    }
                },
            ),
            now(),
            media=True,
        )
        value = begun.get("value") or {}
        urn = str(value.get("video", ""))
        parts: list[str] = []
        for step in value.get("uploadInstructions") or []:
            chunk = content[int(step["firstByte"]) : int(step["lastByte"]) + 1]
            put = await call(
                self._http,
                "PUT",
                str(step["uploadUrl"]),
                token=account.access_token,
                content=chunk,
                headers={"Content-Type": "application/octet-stream"},
            )
            if not put.is_success or not put.headers.get("etag"):
                raise _error(put, now(), media=True)
            parts.append(put.headers["etag"])
        await self._rest(
            "POST",
            "/rest/videos?action=finalizeUpload",
            account,
            media=True,
            json={
                "finalizeUploadRequest": {
                    "video": urn,
                    "uploadToken": str(value.get("uploadToken", "")),
                    "uploadedPartIds": parts,
                }
            },
        )
        for _ in range(VIDEO_POLLS):
            state = _body(
                await self._rest("GET", f"/rest/videos/{quote(urn)}", account, media=True),
                now(),
                media=True,
            )
            if state.get("status") == "AVAILABLE":
                return {"id": urn}
            if state.get("status") == "PROCESSING_FAILED":
                raise PlatformError(ErrorCode.MEDIA_REJECTED, "LinkedIn could not process it")
            await asyncio.sleep(self._poll_interval)
        raise PlatformError(ErrorCode.PLATFORM_UNAVAILABLE, "LinkedIn is still processing it")

    def _permalink(self, urn: str) -> str:
        return f"{self._web}/feed/update/{urn}/"

    def _after(self, seconds: Any) -> datetime | None:
        return seconds_after(self._clock.now(), seconds)

    def _app(self, pages: bool) -> tuple[str, str]:
        """The app that connects members, or company pages (the same one unless the
        settings name an app of its own for pages)."""
        return self._pages_app if pages else (self._client_id, self._client_secret)

    async def _token(self, form: dict[str, str], *, pages: bool = False) -> dict[str, Any]:
        """A call to the token endpoint, with the app's credentials in the form."""
        client_id, client_secret = self._app(pages)
        response = await call(
            self._http,
            "POST",
            f"{self._oauth}/accessToken",
            data={**form, "client_id": client_id, "client_secret": client_secret},
        )
        if response.is_success:
            body = json_object(response)
            if body is not None and body.get("access_token"):
                return body
            raise PlatformError(ErrorCode.PLATFORM_UNAVAILABLE, "LinkedIn answered no token")
        body = json_object(response) or {}
        message = str(body.get("error_description") or body.get("error") or response.reason_phrase)
        failure = throttled_or_failed(response, message, self._clock.now())
        if failure is not None:
            raise failure
        if response.status_code == 401:  # the app itself: its id or secret
            raise PlatformError(ErrorCode.INVALID_REQUEST, f"the app was refused: {message}")
        raise PlatformError(ErrorCode.AUTH_EXPIRED, message, status=response.status_code)

    async def _rest(
        self,
        method: str,
        path: str,
        account: Account,
        *,
        sends: bool = False,
        media: bool = False,
        **kw: Any,
    ) -> httpx.Response:
        """A call to the versioned API; an error answer raised in the catalogue."""
        headers = {"LinkedIn-Version": self._version, "X-Restli-Protocol-Version": RESTLI}
        response = await call(
            self._http,
            method,
            self._api + path,
            sends=sends,
            token=account.access_token,
            headers=headers,
            **kw,
        )
        if not response.is_success:
            raise _error(response, self._clock.now(), sends=sends, media=media, web=self._web)
        return response


def _author(account: Account) -> str:
    """Who the account's posts are by: its page, or the member."""
    if account.external_id.startswith(ORGANIZATION):
        return account.external_id
    return f"urn:li:person:{account.external_id}"


def _body(response: httpx.Response, now: datetime, *, media: bool = False) -> dict[str, Any]:
    if not response.is_success:
        raise _error(response, now, media=media)
    body = json_object(response)
    if body is None:
        raise PlatformError(
            ErrorCode.PLATFORM_UNAVAILABLE, f"LinkedIn answered {response.status_code} with no JSON"
        )
    return body


def _error(
    response: httpx.Response,
    now: datetime,
    *,
    sends: bool = False,
    media: bool = False,
    web: str = "https://www.linkedin.com",
) -> PlatformError:
    """An error answer in the catalogue. LinkedIn says `{"status", "serviceErrorCode",
    "code", "message"}`; a duplicate post (422) names the post LinkedIn has in its message,
    which is kept as the error's `existing`."""
    body = json_object(response) or {}
    message = str(body.get("message") or response.reason_phrase)
    status = response.status_code
    failure = throttled_or_failed(response, message, now, sends=sends)
    if failure is not None:
        return failure
    code = str(body.get("code") or "")
    if status == 401:
        kind = ErrorCode.AUTH_REVOKED if code in _REVOKED else ErrorCode.AUTH_EXPIRED
        return PlatformError(kind, message, status=status)
    if status == 403:
        return PlatformError(ErrorCode.AUTH_REVOKED, message, status=status)
    details = (body.get("errorDetails") or {}).get("inputErrors") or []
    if sends and status == 422 and any(d.get("code") == "DUPLICATE_POST" for d in details):
        found = _DUPLICATE.search(message)
        existing = None
        if found:
            urn = found.group()
            existing = Published(urn, f"{web}/feed/update/{urn}/", now)
        return PlatformError(ErrorCode.CONTENT_REJECTED, message, status=status, existing=existing)
    if media and status in (400, 413, 422):
        return PlatformError(ErrorCode.MEDIA_REJECTED, message, status=status)
    if sends and status in (400, 422):
        return PlatformError(ErrorCode.CONTENT_REJECTED, message, status=status)
    return PlatformError(ErrorCode.INVALID_REQUEST, message, status=status)
