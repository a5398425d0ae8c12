"""Rich text on Bluesky: the links, mentions and hashtags of a post's text as facets, each
placed by UTF-8 byte offsets (lexicon app.bsky.richtext.facet), as Bluesky's own clients
detect them: a link starts with `http://` or `https://` and loses trailing punctuation; a
mention is `@` and a handle with a dot, and becomes a facet only when the handle resolves
to a DID; a hashtag is `#` and up to 64 characters that are not all digits."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import regex

_LINK = regex.compile(r"(?:^|(?<=[\s(]))(https?://\S+)")
_MENTION = regex.compile(
    r"(?:^|(?<=[\s(]))@([a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?"
    r"(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)+)"
)
_TAG = regex.compile(r"(?:^|(?<=\s))#([^\s\p{P}\p{S}]?[^\s]*?)(?=[\p{P}\p{S}]*(?:\s|$))")
_TRAILING = ".,;:!?"
_FACET = "app.bsky.richtext.facet"
MAX_TAG = 64

Resolve = Callable[[str], Awaitable[str | None]]
"""A handle's DID, or None when it does not resolve."""


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    """Byte offsets into the UTF-8 text, end exclusive."""
    feature: dict[str, Any]


def _bytes(text: str, start: int, end: int) -> tuple[int, int]:
    before = len(text[:start].encode())
    return before, before + len(text[start:end].encode())


def _link_end(text: str, start: int, end: int) -> int:
    """Where a detected link really ends: without trailing punctuation, nor a closing
    parenthesis it did not open."""
    while end > start and text[end - 1] in _TRAILING:
        end -= 1
    if text[end - 1] == ")" and "(" not in text[start : end - 1]:
        end -= 1
    return end


async def facets(text: str, resolve: Resolve) -> list[dict[str, Any]]:
    """The facets of `text`, in the order they appear."""
    spans: list[Span] = []
    for match in _LINK.finditer(text):
        end = _link_end(text, match.start(1), match.end(1))
        uri = text[match.start(1) : end]
        if "." not in uri.partition("://")[2]:
            continue
        feature = {"$type": _FACET + "#link", "uri": uri}
        spans.append(Span(*_bytes(text, match.start(1), end), feature))
    for match in _MENTION.finditer(text):
        handle = match.group(1).lower()
        if handle.rsplit(".", 1)[-1].isdigit():
            continue
        did = await resolve(handle)
        if did is not None:
            feature = {"$type": _FACET + "#mention", "did": did}
            spans.append(Span(*_bytes(text, match.start(), match.end()), feature))
    for match in _TAG.finditer(text):
        tag = match.group(1)
        if not tag or tag.isdigit() or len(tag) > MAX_TAG:
            continue
        feature = {"$type": _FACET + "#tag", "tag": tag}
        spans.append(Span(*_bytes(text, match.start(), match.end(1)), feature))
    spans.sort(key=lambda s: s.start)
    kept: list[Span] = []
    for span in spans:  # a mention or tag inside a link is part of the link
        if kept and span.start < kept[-1].end:
            continue
        kept.append(span)
    return [
        {
            "$type": _FACET,
            "index": {"byteStart": s.start, "byteEnd": s.end},
            "features": [s.feature],
        }
        for s in kept
    ]
