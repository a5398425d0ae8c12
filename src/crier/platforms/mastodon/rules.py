"""What a Mastodon instance accepts, and how it counts a status.

The numbers are Mastodon's defaults (docs: user/posting, methods/instance); each
instance may say otherwise in `GET /api/v2/instance`, read when an account connects and
stored with it. A status counts in graphemes, every `http://` or `https://` link as 23
characters whatever its length (or the instance's `characters_reserved_per_url`), and a
mention only up to its username (`@alice@example.com` counts as `@alice`); a content
warning counts toward the limit too.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Literal

import regex
from pydantic import BaseModel, ConfigDict, Field

from crier.platforms.content import LINK_LENGTH, PlatformRules, TextCounter, count_graphemes

URL_LENGTH = 23
_URL = regex.compile(r"https?://[^\s<>\"']+")
_MENTION = regex.compile(r"(?<![\w@])(@\w+)@[\w.-]+\w")


class MastodonSettings(BaseModel):
    """A target's `platform_settings` on Mastodon (methods/statuses: create)."""

    model_config = ConfigDict(extra="forbid")

    visibility: Literal["public", "unlisted", "private", "direct"] | None = Field(
        default=None, description="Who sees the status; the account's default when omitted."
    )
    language: str | None = Field(
        default=None, pattern=r"^[a-z]{2}$", description="ISO 639-1 code of its language."
    )
    spoiler_text: str | None = Field(
        default=None, max_length=500, description="A content warning shown before the text."
    )
    sensitive: bool | None = Field(default=None, description="Mark the media as sensitive.")


def count_status(text: str, link_length: int = URL_LENGTH) -> int:
    """The length Mastodon gives `text`, each link counting `link_length`."""
    text = _MENTION.sub(r"\1", text)
    text = _URL.sub("x" * link_length, text)
    return count_graphemes(text)


def status_counter(link_length: int) -> TextCounter:
    """How an instance whose links count `link_length` counts a status."""
    return partial(count_status, link_length=link_length)


MASTODON = PlatformRules(
    max_text=500,
    max_media=4,
    media_kinds=frozenset({"image", "gif", "video"}),
    video_alone=True,
    preferred_crop="original",
    count_text=count_status,
    text_counting=(
        "graphemes; each link counts 23 (or what the instance says), a mention only its username"
    ),
    max_image_bytes=16 * 1024 * 1024,
    max_video_bytes=99 * 1024 * 1024,
    settings=MastodonSettings,
    counted_settings=("spoiler_text",),
    counter_for_links=status_counter,
)


def instance_limits(instance: dict[str, Any]) -> dict[str, int]:
    """The limits an instance states in `GET /api/v2/instance` (`configuration`), in the
    keys of `PlatformRules.with_limits`; what it leaves out keeps the default."""
    configuration = instance.get("configuration") or {}
    statuses = configuration.get("statuses") or {}
    media = configuration.get("media_attachments") or {}
    found = {
        "max_text": statuses.get("max_characters"),
        "max_media": statuses.get("max_media_attachments"),
        "max_image_bytes": media.get("image_size_limit"),
        "max_video_bytes": media.get("video_size_limit"),
        LINK_LENGTH: statuses.get("characters_reserved_per_url"),
    }
    return {k: int(v) for k, v in found.items() if isinstance(v, int) and v > 0}
