"""The names Crier gives the figures networks report, whatever each network calls them.

Adapters report a post's counts and an account's own figures under these names, keeping a
network's extras (X's `bookmarks`, Mastodon's and Bluesky's `quotes`) under their own.
"""

from __future__ import annotations

from collections.abc import Mapping

NORMALIZED = (
    "impressions",
    "reach",
    "engagements",
    "likes",
    "comments",
    "shares",
    "clicks",
    "video_views",
    "followers",
)
"""The figures every network's are named after, where it has them."""

ENGAGING = ("likes", "comments", "shares", "quotes", "clicks")
"""What `engagements` adds up for a network that does not count them itself."""


def with_engagements(counts: Mapping[str, float]) -> dict[str, float]:
    """A post's counts with `engagements`: the network's own figure where it gives one, or
    else the sum of its likes, comments, shares, quotes and clicks."""
    found = dict(counts)
    if "engagements" not in found and any(name in found for name in ENGAGING):
        found["engagements"] = sum(found.get(name, 0) for name in ENGAGING)
    return found
