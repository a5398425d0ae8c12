"""What X accepts in a post, and how it counts one (docs.x.com: fundamentals/counting-characters,
x-api/media).

A post weighs at most 280. Text is normalised to NFC first; code points in the ranges X's
text library lists as light (Latin, Greek, Cyrillic and the other scripts below U+1100,
general punctuation, the zero-width joiner) weigh 1, every other one 2; an emoji weighs 2
however many code points make it; a link (written with `http://`, `https://` or `www.`)
weighs 23, the length of the t.co link X puts in its place. Up to 4 images, or one GIF or
video alone; images up to 5 MB, videos up to 512 MB and 140 seconds.
"""

from __future__ import annotations

import unicodedata
from typing import Literal

import regex
from pydantic import BaseModel, ConfigDict, Field

from crier.platforms.content import PlatformRules

URL_WEIGHT = 23
LIGHT = ((0x0000, 0x10FF), (0x2000, 0x200D), (0x2010, 0x201F), (0x2032, 0x2037))
"""Code point ranges that weigh 1 (twitter-text's configuration, version 3)."""
LINK = regex.compile(r"(?i)(?<![\w@./])(?:https?://|www\.)[^\s<>\"]+")
_EMOJI = regex.compile(r"\p{Extended_Pictographic}|\p{Regional_Indicator}|\u20e3")


class XSettings(BaseModel):
    """A target's `platform_settings` on X (`POST /2/tweets`)."""

    model_config = ConfigDict(extra="forbid")

    reply_settings: Literal["following", "mentionedUsers", "subscribers", "verified"] | None = (
        Field(
            default=None,
            description="Who may reply: the accounts the author follows, those the post "
            "mentions, the author's subscribers, or verified accounts; everyone when omitted.",
        )
    )


def _weight(grapheme: str) -> int:
    if _EMOJI.search(grapheme):
        return 2
    return sum(1 if any(a <= ord(c) <= b for a, b in LIGHT) else 2 for c in grapheme)


def count_weighted(text: str) -> int:
    """The weight X gives `text`, out of 280."""
    text = unicodedata.normalize("NFC", text)
    links = LINK.findall(text)
    rest = LINK.sub("", text)
    return URL_WEIGHT * len(links) + sum(_weight(g) for g in regex.findall(r"\X", rest))


X = PlatformRules(
    max_text=280,
    max_media=4,
    media_kinds=frozenset({"image", "gif", "video"}),
    video_alone=True,
    preferred_crop="landscape",
    count_text=count_weighted,
    text_counting="weighted: most Latin-script characters 1, others and every emoji 2, "
    "each link 23 (NFC)",
    max_image_bytes=5 * 1024 * 1024,
    max_video_bytes=512 * 1024 * 1024,
    max_video_seconds=140,
    settings=XSettings,
)
