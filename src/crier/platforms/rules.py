"""What each platform accepts in a post: text length, media count and kinds, the crop it
prefers. Checked when a post is scheduled, so that a post that cannot publish is refused
then, not discovered at publishing time."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from crier.platforms.base import MediaRef, Prepared


class MediaLike(Protocol):
    @property
    def category(self) -> str: ...


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


_ALL = frozenset({"image", "gif", "video"})

RULES: dict[str, PlatformRules] = {
    "sandbox": PlatformRules(
        max_text=500, max_media=4, media_kinds=_ALL, video_alone=True, preferred_crop="square"
    ),
    "x": PlatformRules(
        max_text=280, max_media=4, media_kinds=_ALL, video_alone=True, preferred_crop="landscape"
    ),
    "linkedin": PlatformRules(
        max_text=3000, max_media=9, media_kinds=_ALL, video_alone=True, preferred_crop="landscape"
    ),
    "facebook": PlatformRules(
        max_text=63206, max_media=10, media_kinds=_ALL, preferred_crop="landscape"
    ),
    "instagram": PlatformRules(
        max_text=2200,
        max_media=10,
        media_kinds=frozenset({"image", "video"}),
        requires_media=True,
        preferred_crop="portrait",
    ),
    "mastodon": PlatformRules(
        max_text=500, max_media=4, media_kinds=_ALL, video_alone=True, preferred_crop="original"
    ),
    "bluesky": PlatformRules(
        max_text=300, max_media=4, media_kinds=_ALL, video_alone=True, preferred_crop="landscape"
    ),
    "google_business": PlatformRules(
        max_text=1500, max_media=1, media_kinds=frozenset({"image"}), preferred_crop="landscape"
    ),
}


@dataclass(frozen=True)
class Violation:
    field: str
    message: str
    kind: str


def check_content(platform: str, text: str, media: Sequence[MediaLike]) -> list[Violation]:
    """Every way `text` and `media` break `platform`'s rules (empty when they fit)."""
    rules = RULES[platform]
    problems: list[Violation] = []
    if len(text) > rules.max_text:
        problems.append(
            Violation(
                "payload.text",
                f"{len(text)} characters; {platform} allows {rules.max_text}",
                "text_too_long",
            )
        )
    if not text.strip() and not media:
        problems.append(Violation("payload", "a post needs text or media", "empty_post"))
    if rules.requires_media and not media:
        problems.append(
            Violation("payload.media_ids", f"{platform} needs at least one media", "media_required")
        )
    if len(media) > rules.max_media:
        problems.append(
            Violation(
                "payload.media_ids",
                f"{len(media)} media; {platform} allows {rules.max_media}",
                "too_many_media",
            )
        )
    kinds = {m.category for m in media}
    for kind in sorted(kinds - rules.media_kinds):
        problems.append(
            Violation(
                "payload.media_ids", f"{platform} does not accept {kind}", "media_kind_not_accepted"
            )
        )
    moving = [m for m in media if m.category in ("video", "gif")]
    if len(moving) > rules.max_videos:
        problems.append(
            Violation(
                "payload.media_ids",
                f"{platform} allows {rules.max_videos} video or GIF per post",
                "too_many_videos",
            )
        )
    elif moving and rules.video_alone and len(media) > 1:
        problems.append(
            Violation(
                "payload.media_ids",
                f"on {platform} a video or GIF must be the only media",
                "video_not_alone",
            )
        )
    return problems


def preferred_crop(platform: str) -> str:
    """The name of the media variant this platform's payload should use."""
    return RULES[platform].preferred_crop


class AssetLike(Protocol):
    @property
    def id(self) -> UUID: ...

    @property
    def category(self) -> str: ...

    @property
    def variants(self) -> list[dict[str, Any]]: ...


def shape_for(
    platform: str, text: str, assets: Sequence[AssetLike], media_base_url: str
) -> Prepared:
    """A post shaped for `platform`: each image in the crop the platform prefers (the
    original when the asset has no such variant, as videos do)."""
    crop = preferred_crop(platform)
    media = []
    for asset in assets:
        url = f"{media_base_url}/v1/media/{asset.id}/file"
        if crop != "original" and any(v["name"] == crop for v in asset.variants):
            url += f"?variant={crop}"
        media.append(MediaRef(kind=asset.category, url=url))
    return Prepared(text=text, media=media)
