"""What a platform accepts in a post, and how it counts text: the shape of every
platform's rules (each network's package says its own; `rules` gathers them)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import regex
from pydantic import BaseModel


def count_characters(text: str) -> int:
    """Code points, as Python counts them."""
    return len(text)


def count_graphemes(text: str) -> int:
    """What a reader sees as characters: an emoji with modifiers is one."""
    return len(regex.findall(r"\X", text))


TextCounter = Callable[[str], int]


@dataclass(frozen=True)
class PlatformRules:
    max_text: int
    max_media: int
    media_kinds: frozenset[str]
    max_videos: int = 1
    video_alone: bool = False
    """A video (or GIF) must be the post's only media."""
    requires_media: bool = False
    preferred_crop: str = "original"
    count_text: TextCounter = count_characters
    text_counting: str = "characters"
    """How the text is counted, for people (`GET /v1/platforms`)."""
    max_text_bytes: int | None = None
    """A cap on the text's UTF-8 bytes besides its length (Bluesky's 3,000)."""
    max_image_bytes: int | None = None
    max_video_bytes: int | None = None
    max_video_seconds: int | None = None
    settings: type[BaseModel] | None = None
    """What a target's `platform_settings` may hold; anything, where None."""
    counted_settings: tuple[str, ...] = ()
    """Settings whose text counts toward `max_text` with the post's (Mastodon's content
    warning)."""
    counter_for_links: Callable[[int], TextCounter] | None = None
    """Where every link counts a fixed length that each server may set (Mastodon's
    `characters_reserved_per_url`): the counter for a given length."""

    def with_limits(self, limits: Mapping[str, Any] | None) -> PlatformRules:
        """These rules with what one server says it allows (`Limits` keys) in their place."""
        if not limits:
            return self
        known: dict[str, Any] = {
            k: int(v) for k, v in limits.items() if k in LIMIT_KEYS and v is not None
        }
        link_length = limits.get(LINK_LENGTH)
        if isinstance(link_length, int) and link_length > 0 and self.counter_for_links:
            known["count_text"] = self.counter_for_links(link_length)
        return replace(self, **known)

    def describe(self) -> dict[str, Any]:
        """The rules as `GET /v1/platforms` shows them."""
        return {
            "max_text": self.max_text,
            "text_counting": self.text_counting,
            "max_text_bytes": self.max_text_bytes,
            "max_media": self.max_media,
            "media_kinds": sorted(self.media_kinds),
            "max_videos": self.max_videos,
            "video_alone": self.video_alone,
            "requires_media": self.requires_media,
            "max_image_bytes": self.max_image_bytes,
            "max_video_bytes": self.max_video_bytes,
            "max_video_seconds": self.max_video_seconds,
        }


LIMIT_KEYS = frozenset({"max_text", "max_media", "max_image_bytes", "max_video_bytes"})
"""What a server may set for its own accounts (stored with each account)."""
LINK_LENGTH = "link_length"
"""Stored with them too: what each link counts there, for rules with a `counter_for_links`."""
