"""What Bluesky accepts in a post, and how it counts one (lexicons app.bsky.feed.post and
app.bsky.embed.*).

A post's text is at most 300 graphemes and 3,000 bytes of UTF-8; links count their full
length (Bluesky shortens them only on screen). Up to 4 images of 2,000,000 bytes each, or
one video (MP4), which goes up as a blob to the account's server, whose blob limit is
50 MB.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crier.platforms.content import PlatformRules, count_graphemes

_LANG = re.compile(r"[a-zA-Z]{2,3}(-[a-zA-Z0-9]{2,8})*")


class BlueskySettings(BaseModel):
    """A target's `platform_settings` on Bluesky."""

    model_config = ConfigDict(extra="forbid")

    langs: list[str] | None = Field(
        default=None,
        max_length=3,
        description="The post's languages (BCP 47, such as `en` or `pt-BR`), at most 3.",
    )
    replies: Literal["everybody", "nobody", "mentioned", "following"] | None = Field(
        default=None,
        description="Who may reply: everybody (the default), nobody, the accounts the post "
        "mentions, or the accounts the author follows (a threadgate written with the post).",
    )

    @field_validator("langs")
    @classmethod
    def _tags(cls, langs: list[str] | None) -> list[str] | None:
        for lang in langs or []:
            if not _LANG.fullmatch(lang):
                raise ValueError(f"{lang!r} is not a BCP 47 language tag")
        return langs


BLUESKY = PlatformRules(
    max_text=300,
    max_text_bytes=3000,
    max_media=4,
    media_kinds=frozenset({"image", "video"}),
    video_alone=True,
    preferred_crop="original",  # shown whole, at the aspect ratio the post gives
    count_text=count_graphemes,
    text_counting="graphemes (links count in full)",
    max_image_bytes=2_000_000,
    max_video_bytes=50 * 1024 * 1024,
    settings=BlueskySettings,
)
