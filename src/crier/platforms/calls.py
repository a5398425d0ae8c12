"""One HTTP call to a network, its transport failures in the delivery error catalogue.

Whether a failed call may have reached the network decides what follows (docs/errors.md):
refused or unresolved (`ConnectError`) and no connection in time (`ConnectTimeout`) mean
nothing was sent; no answer in time, or a connection lost mid-call, mean it may have been,
when the call creates something (`sends`).
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any

import httpx

from crier.kit.outbound import DestinationRefused, Guard
from crier.kit.storage import Storage
from crier.platforms.base import MediaRef
from crier.platforms.errors import ErrorCode, PlatformError


async def call(
    http: httpx.AsyncClient,
    method: str,
    url: str,
    *,
    sends: bool = False,
    token: str | None = None,
    **kw: Any,
) -> httpx.Response:
    """Make the call (with `token` as its bearer token, if given); any answer is returned,
    a transport failure raised as `PlatformError`."""
    if token is not None:
        kw["headers"] = {**(kw.get("headers") or {}), "Authorization": f"Bearer {token}"}
    try:
        return await http.request(method, parsed(url), **kw)
    except httpx.TimeoutException as exc:
        raise PlatformError(
            ErrorCode.TIMEOUT,
            f"no answer in time ({type(exc).__name__})",
            may_have_succeeded=sends and not isinstance(exc, httpx.ConnectTimeout),
        ) from None
    except httpx.ConnectError as exc:
        refused = _refusal(exc)
        if refused is not None:
            raise PlatformError(
                ErrorCode.INVALID_REQUEST, f"destination refused: {refused}"
            ) from None
        raise PlatformError(ErrorCode.PLATFORM_UNAVAILABLE, f"cannot connect: {exc}") from None
    except httpx.TransportError as exc:
        raise PlatformError(
            ErrorCode.PLATFORM_UNAVAILABLE, f"transport failed: {exc}", may_have_succeeded=sends
        ) from None


def _refusal(exc: BaseException) -> DestinationRefused | None:
    """The guard's refusal behind a connection failure, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, DestinationRefused):
            return seen
        os_error = getattr(seen, "os_error", None)  # aiohttp's ClientConnectorError
        if isinstance(os_error, DestinationRefused):
            return os_error
        seen = seen.__cause__ or seen.__context__
    return None


def server_failure(response: httpx.Response, message: str, sends: bool) -> PlatformError | None:
    """A 5xx answer as a catalogued failure (None for any other status). A server error on
    a send might have come after the network stored the post (a gateway timing out, say),
    so it is reported as maybe accepted: the delivery is looked up before any resend."""
    status = response.status_code
    if status == 504:
        return PlatformError(ErrorCode.TIMEOUT, message, status=status, may_have_succeeded=sends)
    if status >= 500:
        return PlatformError(
            ErrorCode.PLATFORM_UNAVAILABLE, message, status=status, may_have_succeeded=sends
        )
    return None


async def media_bytes(storage: Storage, media: MediaRef) -> bytes:
    """The file of a post's media, read from Crier's storage (off the event loop), to
    upload to a network."""
    if media.path is None:
        raise PlatformError(ErrorCode.MEDIA_REJECTED, "the media's file is not in storage")
    return await asyncio.to_thread(storage.local_path(media.path).read_bytes)


def json_object(response: httpx.Response) -> dict[str, Any] | None:
    """The answer's body, if it is a JSON object."""
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def throttled_or_failed(
    response: httpx.Response,
    message: str,
    now: datetime,
    *,
    sends: bool = False,
    reset_header: str | None = None,
) -> PlatformError | None:
    """A 429 (rate limited, to wait what the network says: `Retry-After` or its own reset
    header) or a 5xx (see `server_failure`) in the catalogue; None for any other status."""
    if response.status_code == 429:
        return PlatformError(
            ErrorCode.RATE_LIMITED,
            message,
            status=429,
            retry_after=retry_after(response, now, reset_header),
        )
    return server_failure(response, message, sends)


def retry_after(
    response: httpx.Response, now: datetime, reset_header: str | None = None
) -> float | None:
    """Seconds to wait, from `Retry-After` (seconds or an HTTP date) or else the network's
    own reset header (an ISO 8601 time, or epoch seconds)."""
    value = response.headers.get("retry-after", "").strip()
    if value.isdigit():
        return float(value)
    if value:
        try:
            return max(0.0, (parsedate_to_datetime(value) - now).total_seconds())
        except (TypeError, ValueError):
            pass
    if reset_header is None:
        return None
    reset = response.headers.get(reset_header, "").strip()
    if not reset:
        return None
    try:
        if reset.replace(".", "", 1).isdigit():
            return max(0.0, float(reset) - now.timestamp())
        return max(
            0.0, (datetime.fromisoformat(reset.replace("Z", "+00:00")) - now).total_seconds()
        )
    except ValueError:
        return None


@lru_cache(maxsize=256)
def parsed(url: str) -> httpx.URL:
    """`url` parsed once: httpx parses a string URL on every call, a tenth of the cost of a
    publish when hundreds are in flight."""
    return httpx.URL(url)


async def named_server(
    given: str, guard: Guard, allowed: frozenset[str], what: str, example: str
) -> str:
    """The base URL (`https://host[:port]`) of a server a user named (a Mastodon instance,
    a Bluesky PDS), if it may be called: https only (http too where the guard allows
    loopback, for local servers), nothing but the address, on the `allowed` list when it
    has one (host or host:port), and passing the outbound guard. Refusals are
    `PlatformError(INVALID_REQUEST)`, or the guard's `DestinationRefused`."""
    text = given.strip()
    try:
        url = httpx.URL(text if "://" in text else f"https://{text}")
    except httpx.InvalidURL as error:
        raise PlatformError(ErrorCode.INVALID_REQUEST, f"not a URL: {error}") from None
    plain_http = url.scheme == "http" and guard.allow_loopback
    if url.scheme != "https" and not plain_http:
        raise PlatformError(ErrorCode.INVALID_REQUEST, f"the {what} must be on https://")
    if not url.host or url.userinfo or url.path not in ("", "/") or url.query:
        raise PlatformError(
            ErrorCode.INVALID_REQUEST, f"give the {what}'s address alone, such as {example}"
        )
    port = url.port or (443 if url.scheme == "https" else 80)
    named = url.netloc.decode("ascii").lower()
    if allowed and named not in allowed and url.host not in allowed:
        raise PlatformError(
            ErrorCode.INVALID_REQUEST, f"this server does not connect accounts of {named}"
        )
    guard.check_literal(str(url))
    await guard.vetted(url.host, port)
    base = f"{url.scheme}://{url.host}"
    return base + (f":{url.port}" if url.port else "")


def seconds_after(now: datetime, seconds: Any) -> datetime | None:
    """When a lifetime a network gave in seconds (an OAuth `expires_in`) ends; None when it
    gave none, or not a positive number."""
    if not isinstance(seconds, int | float) or seconds <= 0:
        return None
    return now + timedelta(seconds=float(seconds))


_FRACTION = re.compile(r"\.(\d{6})\d+")


def parse_time(value: Any) -> datetime | None:
    """A network's timestamp (ISO 8601 or RFC 3339: `Z` or an offset, up to nine digits of
    a second, Google's), in UTC; one with no offset is taken as UTC. None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        at = datetime.fromisoformat(_FRACTION.sub(r".\1", value))
    except ValueError:
        return None
    return at.astimezone(UTC) if at.tzinfo else at.replace(tzinfo=UTC)
