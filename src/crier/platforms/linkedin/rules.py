"""What LinkedIn accepts in a member's post, and how it is written (learn.microsoft.com:
linkedin/marketing/community-management/shares/posts-api, images-api, little-text-format).

A post's commentary is at most 3,000 characters. It is "little" text: the characters that
little reserves for mentions and hashtags templates are escaped with a backslash so that
they stay plain text (`escape`). Up to 9 images (one is `content.media`, several
`content.multiImage`), JPEG or PNG, or one video alone (MP4, up to 500 MB and 30 minutes,
as LinkedIn's media guidelines are reported by schedulers that publish there; not
confirmed in LinkedIn's own pages). GIFs are not sent to LinkedIn yet.
"""

from __future__ import annotations

from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict, Field

from crier.platforms.content import PlatformRules

RESERVED = "\\|{}@[]()<>#*_~"
"""Characters little text reserves, escaped to be taken as plain text."""
_RESERVED = regex.compile("([" + regex.escape(RESERVED) + "])")


class LinkedInSettings(BaseModel):
    """A target's `platform_settings` on LinkedIn (`POST /rest/posts`)."""

    model_config = ConfigDict(extra="forbid")

    visibility: Literal["PUBLIC", "CONNECTIONS"] | None = Field(
        default=None,
        description="Who sees the post: anyone (`PUBLIC`, the default) or the member's "
        "connections.",
    )
    disable_reshare: bool | None = Field(
        default=None, description="Keep others from resharing the post."
    )


def escape(text: str) -> str:
    """`text` as little text that shows exactly `text`."""
    return _RESERVED.sub(r"\\\1", text)


LINKEDIN = PlatformRules(
    max_text=3000,
    max_media=9,
    media_kinds=frozenset({"image", "video"}),
    max_videos=1,
    video_alone=True,
    max_video_bytes=500 * 1024 * 1024,
    max_video_seconds=30 * 60,
    preferred_crop="landscape",
    text_counting="characters (code points), as written before escaping",
    settings=LinkedInSettings,
)
