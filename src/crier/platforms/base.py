"""The one small interface every platform adapter implements."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Tokens:
    """What a network answers when an account connects or its tokens are refreshed."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    external_id: str
    handle: str
    display_name: str | None = None
    server_url: str | None = None
    """The account's own server, on networks with many (a Mastodon instance)."""
    content_limits: dict[str, Any] | None = None
    """What that server allows in a post, where it says (see `rules.Limits`)."""
    reconnect_by: datetime | None = None
    """When the grant ends for good, however often it is refreshed."""


@dataclass(frozen=True)
class Account:
    """The account a call acts for."""

    access_token: str
    external_id: str = ""
    server_url: str | None = None


@dataclass(frozen=True)
class MediaRef:
    kind: str  # image, gif or video
    url: str
    """Where the network may fetch the file (this API's address for it)."""
    content_type: str = "application/octet-stream"
    path: str | None = None
    """The file in Crier's media storage, for networks it is uploaded to."""
    alt_text: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A post shaped for one platform: what `publish` sends."""

    text: str
    media: list[MediaRef] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Published:
    external_id: str
    permalink: str
    published_at: datetime


class Adapter(Protocol):
    """What Crier needs of a platform. Failures raise `PlatformError` with a catalogued code.

    An adapter whose network forgets idempotency keys after a while says how long it keeps
    them in a `keys_kept` attribute (a `timedelta`): a delivery whose outcome is unknown is
    then not sent again once that has passed. One whose network has no key at all, so that
    a resend could make a second post, says so with `lookup_before_resend = True`: such a
    delivery is sent again only once `find` said it is not there, never when `find`
    failed."""

    platform: str

    async def publish(self, account: Account, post: Prepared, idempotency_key: str) -> Published:
        """Send the post; the platform must never make two posts for one key."""
        ...

    async def find(
        self,
        account: Account,
        idempotency_key: str,
        post: Prepared | None = None,
        since: datetime | None = None,
        taken: frozenset[str] = frozenset(),
    ) -> Published | None:
        """The post sent with this key, if the platform has it (to settle an unknown outcome).
        `post` is what was sent and `since` when the delivery's first attempt began, for
        networks that find a post by what it says rather than by a key (X); `taken` are the
        network's ids of posts that other deliveries of the account made since then, which
        such a lookup must not take for this one."""
        ...

    async def metrics(self, account: Account, external_id: str) -> dict[str, int]:
        """The post's counts so far, under the names of `crier.analytics.names` (and the
        network's extras under their own)."""
        ...

    async def account_metrics(self, account: Account) -> dict[str, int]:
        """The account's own figures now (`followers`, `following`, `posts`), those the
        network gives."""
        ...

    async def refresh(
        self, refresh_token: str, server_url: str | None, external_id: str = ""
    ) -> Tokens:
        """New tokens for the account (`external_id` on its server); networks whose kinds of
        account go through different apps (LinkedIn's pages) tell them apart by it."""
        ...


@dataclass(frozen=True)
class AppCredentials:
    """The app Crier acts as on a network (or on one server of it)."""

    client_id: str
    client_secret: str


@dataclass(frozen=True)
class Consent:
    """A consent being started (`authorize_url`) or completed (`exchange`)."""

    redirect_uri: str
    state: str
    code_verifier: str
    server_url: str | None = None
    """The account's server (a Mastodon instance), on networks with many."""
    app: AppCredentials | None = None
    """The app registered on that server; None where the app comes from the settings."""
    organization: str | None = None
    """The organization (a LinkedIn company page) to connect instead of the member who
    consents, by its id or vanity name, on networks that have them."""

    def authorize_query(self, client_id: str, scope: str) -> dict[str, str]:
        """The query of the authorization request to send the browser with: a code, for
        this client and redirect URI, with `state` and the PKCE challenge (S256)."""
        return {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope,
            "state": self.state,
            "code_challenge": self.code_challenge,
            "code_challenge_method": "S256",
        }

    @property
    def code_challenge(self) -> str:
        """The PKCE challenge of the verifier (S256)."""
        digest = hashlib.sha256(self.code_verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@runtime_checkable
class ConnectsWithOAuth(Protocol):
    """An adapter whose accounts connect through the network's consent screen: OAuth 2.0
    authorization code with PKCE (S256) and `state`."""

    registers_apps: bool
    """Whether Crier registers an app on each server first (`register_app`), as on
    Mastodon, rather than using one app from the settings."""
    organizations: bool
    """Whether a consent can connect an organization the member manages (`organization`
    in the consent) rather than the member, as on LinkedIn."""

    def configured(self) -> bool:
        """Whether this server has what the network needs (app credentials)."""
        ...

    async def server(self, given: str | None) -> str | None:
        """The server an account named by the user lives on, checked and normalised
        (None on networks with one server)."""
        ...

    async def register_app(self, server_url: str, redirect_uri: str) -> AppCredentials: ...

    @property
    def scopes(self) -> str: ...

    def authorize_url(self, consent: Consent) -> str:
        """Where to send the browser for consent."""
        ...

    async def exchange(self, consent: Consent, code: str) -> Tokens:
        """Trade the code for tokens and read the account's profile."""
        ...

    async def revoke(self, account: Account, app: AppCredentials | None) -> None:
        """Revoke the account's token at the network."""
        ...


@dataclass(frozen=True)
class Choice:
    """An account a consent reaches, which the member may choose to connect (a location
    of a Google business account)."""

    external_id: str
    name: str
    group: str | None = None
    """What it belongs to on the network (the business account)."""
    detail: str | None = None
    """What tells it apart for people (an address)."""


@runtime_checkable
class PicksAccounts(Protocol):
    """An adapter whose consent is a user's that reaches many accounts (Google's business
    locations): after it, they are listed and the member chooses which to connect, each
    with the consent's tokens."""

    async def choices(self, access_token: str) -> list[Choice]:
        """Every account the consent's token reaches."""
        ...


@runtime_checkable
class ConnectsDirectly(Protocol):
    """An adapter whose accounts connect with no consent screen (the sandbox's)."""

    async def connect(self, handle: str) -> Tokens:
        """Open an account with this handle and return its tokens."""
        ...


@runtime_checkable
class ConnectsWithPassword(Protocol):
    """An adapter whose accounts connect with a password made for apps (Bluesky's app
    passwords): it opens a session with it, and the password itself is never kept."""

    async def server(self, given: str | None) -> str:
        """The account's server, checked and normalised (the default one when None)."""
        ...

    async def sign_in(self, identifier: str, password: str, server: str) -> Tokens:
        """Open a session for the account and read who it is."""
        ...

    async def sign_out(self, refresh_token: str, server: str) -> None:
        """End the session at the network: neither of its tokens works afterwards."""
        ...


@dataclass(frozen=True)
class NetworkReview:
    """A review of a location as the network shows it."""

    external_id: str
    rating: int
    """1 to 5 stars."""
    text: str | None
    reviewer_name: str | None
    created_at: datetime
    updated_at: datetime
    """When the network last changed it: its text, its rating or its reply."""
    reply: str | None = None
    reply_updated_at: datetime | None = None


@dataclass(frozen=True)
class ReviewPage:
    """One page of a location's reviews, the most recently changed first."""

    reviews: list[NetworkReview]
    next_page_token: str | None
    total: int | None = None
    """How many reviews the location has in all, where the network says."""


@dataclass(frozen=True)
class ReplyReceipt:
    """A reply as the network stored it."""

    text: str
    updated_at: datetime


@runtime_checkable
class HasReviews(Protocol):
    """An adapter whose accounts are business locations with reviews (Google Business
    Profile, the sandbox)."""

    async def reviews(self, account: Account, page_token: str | None) -> ReviewPage:
        """A page of the location's reviews, the most recently changed first: the first
        page without `page_token`, the next with the one the last page gave. A token the
        network no longer takes fails with `ErrorCode.INVALID_REQUEST`."""
        ...

    async def reply(self, account: Account, review_id: str, text: str) -> ReplyReceipt:
        """Make `text` the business's reply to the review, replacing any reply it had: an
        upsert, so sending it again leaves one reply."""
        ...

    async def delete_reply(self, account: Account, review_id: str) -> None:
        """Remove the business's reply to the review (done, too, if it had none)."""
        ...


@runtime_checkable
class HasDailyFigures(Protocol):
    """An adapter whose accounts' own figures are counts per day that the network keeps
    and may revise for a while (Google Business Profile's Performance API), rather than
    levels read now."""

    history_days: int
    """How many days back the first fetch of an account reads."""
    revised_days: int
    """How many recent days each later fetch reads again (the network's figures for them
    may still come in or change)."""

    async def daily_metrics(
        self, account: Account, first: date, last: date
    ) -> dict[date, dict[str, int]]:
        """The account's figures of each day from `first` to `last` (the network's dates),
        under the names of `crier.analytics.names`; a day the network has no figures for
        yet is absent."""
        ...
