"""Facets are placed by UTF-8 byte offsets, as Bluesky's clients detect them, and record
keys are TIDs derived from the delivery."""

from __future__ import annotations

from uuid import UUID

import regex

from crier.platforms.bluesky.adapter import record_key
from crier.platforms.bluesky.richtext import facets

KNOWN = {"bob.test": "did:plc:bob"}


async def resolve(handle: str) -> str | None:
    return KNOWN.get(handle)


async def spans(text: str) -> dict[str, dict[str, str]]:
    encoded = text.encode()
    found = await facets(text, resolve)
    return {
        encoded[f["index"]["byteStart"] : f["index"]["byteEnd"]].decode(): f["features"][0]
        for f in found
    }


async def test_offsets_are_bytes_not_characters() -> None:
    text = "☕👩‍👩‍👧 @bob.test https://example.com/a?b=1. #café"
    assert await spans(text) == {
        "@bob.test": {"$type": "app.bsky.richtext.facet#mention", "did": "did:plc:bob"},
        "https://example.com/a?b=1": {
            "$type": "app.bsky.richtext.facet#link",
            "uri": "https://example.com/a?b=1",
        },
        "#café": {"$type": "app.bsky.richtext.facet#tag", "tag": "café"},
    }


async def test_what_is_not_a_link_mention_or_tag_gets_no_facet() -> None:
    text = "@nobody.test mail@bob.test #123 http://localhost x#tag (see https://a.example/p)"
    found = await spans(text)
    assert found == {
        "https://a.example/p": {
            "$type": "app.bsky.richtext.facet#link",
            "uri": "https://a.example/p",
        }
    }


async def test_a_mention_or_tag_inside_a_link_is_part_of_the_link() -> None:
    found = await spans("https://example.com/(@bob.test)")
    assert list(found) == ["https://example.com/(@bob.test)"]


def test_a_record_key_is_a_tid_and_the_same_for_the_same_delivery() -> None:
    tid = regex.compile(r"[234567abcdefghij][234567abcdefghijklmnopqrstuvwxyz]{12}")
    delivery = "019a1f3e-7b2c-7d40-8a9b-0c1d2e3f4a5b"
    assert UUID(delivery).version == 7
    key = record_key(delivery)
    assert tid.fullmatch(key)
    assert record_key(delivery) == key
    later = "019a1f3e-7b2d-7d40-8a9b-0c1d2e3f4a5b"  # one millisecond on
    assert record_key(later) > key  # TIDs sort by time, as the deliveries do
    assert tid.fullmatch(record_key("not-a-uuid"))
    assert record_key("not-a-uuid") != record_key("not-a-uuid-either")
