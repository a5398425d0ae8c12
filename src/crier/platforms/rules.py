"""What each platform accepts in a post: text length, media count and kinds, the crop it
prefers. Checked when a post is scheduled, so that a post that cannot publish is refused
then, not discovered at publishing time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol
from uuid import UUID

from pydantic import ValidationError

from crier.platforms.base import MediaRef, Prepared
from crier.platforms.bluesky.rules import BLUESKY
from crier.platforms.content import PlatformRules
from crier.platforms.google_business.rules import GOOGLE_BUSINESS
from crier.platforms.linkedin.rules import LINKEDIN
from crier.platforms.mastodon.rules import MASTODON
from crier.platforms.x.rules import X


class MediaLike(Protocol):
    @property
    def category(self) -> str: ...

    @property
    def size_bytes(self) -> int: ...


_ALL = frozenset({"image", "gif", "video"})

RULES: dict[str, PlatformRules] = {
    "sandbox": PlatformRules(
        max_text=500, max_media=4, media_kinds=_ALL, video_alone=True, preferred_crop="square"
    ),
    "x": X,
    "linkedin": LINKEDIN,
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
    "mastodon": MASTODON,
    "bluesky": BLUESKY,
    "google_business": GOOGLE_BUSINESS,
}


@dataclass(frozen=True)
class Violation:
    field: str
    message: str
    kind: str


def rules_for(platform: str, limits: Mapping[str, Any] | None = None) -> PlatformRules:
    """`platform`'s rules, with what the account's own server allows where it says."""
    return RULES[platform].with_limits(limits)


def check_content(
    platform: str,
    text: str,
    media: Sequence[MediaLike],
    limits: Mapping[str, Any] | None = None,
    settings: Mapping[str, Any] | None = None,
) -> list[Violation]:
    """Every way `text` and `media` break `platform`'s rules (empty when they fit), with
    the account's server's own `limits` where it has them, and the text of the target's
    `settings` that the platform counts with the post's."""
    rules = rules_for(platform, limits)
    problems: list[Violation] = []
    counted = [(settings or {}).get(name) for name in rules.counted_settings]
    length = rules.count_text(text) + sum(
        rules.count_text(t) for t in counted if isinstance(t, str)
    )
    if length > rules.max_text:
        problems.append(
            Violation(
                "payload.text",
                f"{length} characters as {platform} counts them ({rules.text_counting}); "
                f"it allows {rules.max_text}",
                "text_too_long",
            )
        )
    size = len(text.encode())
    if rules.max_text_bytes is not None and size > rules.max_text_bytes:
        problems.append(
            Violation(
                "payload.text",
                f"{size} bytes in UTF-8; {platform} allows {rules.max_text_bytes}",
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
    for i, m in enumerate(media):
        cap = rules.max_video_bytes if m.category == "video" else rules.max_image_bytes
        if cap is not None and m.size_bytes > cap:
            problems.append(
                Violation(
                    f"payload.media_ids.{i}",
                    f"{m.size_bytes} bytes; {platform} allows {cap} for a {m.category}",
                    "media_too_large",
                )
            )
    return problems


def check_settings(platform: str, settings: Mapping[str, Any]) -> list[Violation]:
    """Every way a target's `platform_settings` break what `platform` takes."""
    model = RULES[platform].settings
    if model is None:
        return []
    try:
        model.model_validate(dict(settings))
    except ValidationError as invalid:
        return [
            Violation(
                ".".join(["platform_settings", *(str(p) for p in error["loc"])]),
                error["msg"],
                error["type"],
            )
            for error in invalid.errors()
        ]
    return []


def preferred_crop(platform: str) -> str:
    """The name of the media variant this platform's payload should use."""
    return RULES[platform].preferred_crop


class AssetLike(Protocol):
    @property
    def id(self) -> UUID: ...

    @property
    def category(self) -> str: ...

    @property
    def content_type(self) -> str: ...

    @property
    def storage_path(self) -> str: ...

    @property
    def alt_text(self) -> str | None: ...

    @property
    def variants(self) -> list[dict[str, Any]]: ...


def shape_for(
    platform: str,
    text: str,
    assets: Sequence[AssetLike],
    media_base_url: str,
    settings: Mapping[str, Any] | None = None,
) -> Prepared:
    """A post shaped for `platform`: each image in the crop the platform prefers (the
    original when the asset has no such variant, as videos do), with the target's
    `settings` for the platform."""
    crop = preferred_crop(platform)
    media = []
    for asset in assets:
        url = f"{media_base_url}/v1/media/{asset.id}/file"
        path, content_type = asset.storage_path, asset.content_type
        variant = next((v for v in asset.variants if v["name"] == crop), None)
        if crop != "original" and variant is not None:
            url += f"?variant={crop}"
            path = variant.get("storage_path", path)
            content_type = variant.get("content_type", content_type)
        media.append(
            MediaRef(
                kind=asset.category,
                url=url,
                content_type=content_type,
                path=path,
                alt_text=asset.alt_text,
            )
        )
    return Prepared(text=text, media=media, settings=dict(settings or {}))
