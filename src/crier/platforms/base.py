"""The one small interface every platform adapter implements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: datetime | None
    external_id: str
    handle: str


@dataclass(frozen=True)
class MediaRef:
    kind: str  # image, gif or video
    url: str


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
    """What Crier needs of a platform. Failures raise `PlatformError` with a catalogued code."""

    platform: str

    async def publish(self, access_token: str, post: Prepared, idempotency_key: str) -> Published:
        """Send the post; the platform must never make two posts for one key."""
        ...

    async def find(self, access_token: str, idempotency_key: str) -> Published | None:
        """The post sent with this key, if the platform has it (to settle an unknown outcome)."""
        ...

    async def metrics(self, access_token: str, external_id: str) -> dict[str, int]: ...

    async def refresh(self, refresh_token: str) -> Tokens: ...


@runtime_checkable
class ConnectsDirectly(Protocol):
    """An adapter whose accounts connect with no consent screen (the sandbox's)."""

    async def connect(self, handle: str) -> Tokens:
        """Open an account with this handle and return its tokens."""
        ...
