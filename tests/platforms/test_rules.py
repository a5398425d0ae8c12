"""Platform content rules, and each platform's choice of crop."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from crier.media.variants import VARIANT_NAMES
from crier.platforms.rules import RULES, check_content, preferred_crop


@dataclass
class Media:
    category: str
    size_bytes: int = 1000


def kinds(platform: str, text: str, media: list[Media]) -> set[str]:
    return {v.kind for v in check_content(platform, text, media)}


def test_text_at_the_limit_fits_and_one_more_character_does_not() -> None:
    assert kinds("x", "a" * 280, []) == set()
    assert kinds("x", "a" * 281, []) == {"text_too_long"}


def test_media_count_kind_and_mixing_rules() -> None:
    assert kinds("x", "hi", [Media("image")] * 5) == {"too_many_media"}
    assert kinds("x", "hi", [Media("video"), Media("image")]) == {"video_not_alone"}
    assert kinds("x", "hi", [Media("video"), Media("gif")]) == {"too_many_videos"}
    assert kinds("google_business", "hi", [Media("video")]) == {"media_kind_not_accepted"}
    assert kinds("instagram", "caption only", []) == {"media_required"}
    assert kinds("sandbox", "", []) == {"empty_post"}
    assert kinds("facebook", "hi", [Media("video"), Media("image")]) == set()


def test_every_violation_is_reported_not_just_the_first() -> None:
    assert kinds("bluesky", "a" * 301, [Media("image")] * 5) == {"text_too_long", "too_many_media"}


@pytest.mark.parametrize("platform", sorted(RULES))
def test_each_platform_prefers_a_crop_that_uploads_provide(platform: str) -> None:
    assert preferred_crop(platform) in {*VARIANT_NAMES, "original"}


def test_platforms_pick_the_shape_they_show() -> None:
    assert preferred_crop("instagram") == "portrait"
    assert preferred_crop("x") == "landscape"


def test_every_error_code_is_documented_for_users() -> None:
    from pathlib import Path

    from crier.platforms.errors import DESCRIPTIONS, ErrorCode

    text = (Path(__file__).parents[2] / "docs" / "errors.md").read_text()
    assert set(DESCRIPTIONS) == set(ErrorCode)
    for code in ErrorCode:
        assert f"| `{code}` |" in text, code
