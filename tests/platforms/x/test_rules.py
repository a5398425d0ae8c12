"""Crier weighs a post as X does: the counter checked when scheduling agrees with X's
documented examples and with the emulator's own count, written separately from X's page."""

from __future__ import annotations

import pytest

from crier.platforms.rules import check_content
from crier.platforms.x.emulator import weighted_length
from crier.platforms.x.rules import count_weighted

SAMPLES = [
    "Hello, world! 👋",
    "café",
    "cafe\u0301",
    "👨‍👩‍👧‍👦 and 🙋🏽",
    "日本語のテキスト",
    "Ελληνικά και русский",
    "“quotes” — dashes … ellipsis",
    "🇫🇷 flags 🇯🇵",
    "links https://example.com/a/very/long/path?x=1 and www.example.org/b",
    "a" * 280,
    "한국어 " * 20,
]


@pytest.mark.parametrize("text", SAMPLES)
def test_crier_and_the_emulator_weigh_a_post_alike(text: str) -> None:
    assert count_weighted(text) == weighted_length(text)


def test_the_documented_examples() -> None:
    assert count_weighted("Hello, world! 👋") == 16
    assert count_weighted("cafe\u0301") == 4
    assert count_weighted("👨‍👩‍👧‍👦") == 2
    assert count_weighted("日本") == 4
    assert count_weighted("https://example.com/very/long/path") == 23


def test_the_limit_is_280_weighed() -> None:
    assert check_content("x", "日本" * 70, []) == []
    [too_long] = check_content("x", "日本" * 70 + "a", [])
    assert too_long.kind == "text_too_long"
    assert "281" in too_long.message
