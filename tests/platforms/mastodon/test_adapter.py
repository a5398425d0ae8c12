"""Mastodon's adapter on its own: how a status is counted, which instances may be called
(checked before any connection), and what an instance's limits become."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from crier.kit.outbound import DestinationRefused, Guard
from crier.kit.storage import LocalStorage
from crier.platforms.base import Account, Prepared
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.mastodon.adapter import MastodonAdapter
from crier.platforms.mastodon.rules import MASTODON, count_status, instance_limits
from crier.platforms.registry import platform_http
from tests.mastodon import Mastodon

PUBLIC = "93.184.215.14"


class Resolver:
    """A name service for tests: fixed answers, and a record of what was asked."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.asked: list[str] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append(host)
        return [self.table[host]]


def resolver_of(table: dict[str, str]) -> Resolver:
    return Resolver(table)


Make = Callable[..., MastodonAdapter]


@pytest.fixture
async def make(tmp_path: Path) -> AsyncIterator[Make]:
    """Adapters on guarded clients of their own, closed after the test."""
    clients: list[httpx.AsyncClient] = []

    def build(guard: Guard, **options: Any) -> MastodonAdapter:
        clients.append(platform_http(guard=guard))
        return MastodonAdapter(clients[-1], guard, LocalStorage(tmp_path), **options)

    yield build
    for client in clients:
        await client.aclose()


@pytest.mark.parametrize(
    ("text", "length"),
    [
        ("hello", 5),
        ("see https://example.com/" + "a" * 200, 4 + 23),
        ("hi @alice@mastodon.example", 3 + 6),
        ("👍🏽👨‍👩‍👧", 2),  # graphemes, not code points
        ("mail me at bob@example.com", 26),  # an address is not a mention
    ],
)
def test_a_status_counts_as_mastodon_counts_it(text: str, length: int) -> None:
    assert count_status(text) == length


def test_an_instances_limits_are_read_from_its_configuration() -> None:
    instance = {  # as GoToSocial answers, where a link counts 25
        "configuration": {
            "statuses": {
                "max_characters": 5000,
                "max_media_attachments": 6,
                "characters_reserved_per_url": 25,
            },
            "media_attachments": {"image_size_limit": 41943040, "video_size_limit": 41943040},
        }
    }
    limits = instance_limits(instance)
    assert limits == {
        "max_text": 5000,
        "max_media": 6,
        "max_image_bytes": 41943040,
        "max_video_bytes": 41943040,
        "link_length": 25,
    }
    assert instance_limits({}) == {}
    rules = MASTODON.with_limits(limits)
    assert rules.count_text("see https://example.com/" + "a" * 200) == 4 + 25
    assert MASTODON.count_text("see https://example.com/" + "a" * 200) == 4 + 23


async def test_an_instance_is_named_by_its_address_alone(make: Make) -> None:
    resolve = resolver_of({"mastodon.example": PUBLIC})
    mastodon = make(Guard(resolver=resolve))
    assert await mastodon.server("mastodon.example") == "https://mastodon.example"
    assert await mastodon.server("https://mastodon.example/") == "https://mastodon.example"
    for wrong in ("", "https://mastodon.example/@alice", "http://mastodon.example", "ftp://x"):
        with pytest.raises(PlatformError) as refused:
            await mastodon.server(wrong)
        assert refused.value.code == ErrorCode.INVALID_REQUEST


@pytest.mark.parametrize(
    "address", ["10.1.2.3", "192.168.0.10", "169.254.169.254", "127.0.0.1", "::1", "fd00::1"]
)
async def test_an_instance_resolving_to_an_inner_address_is_refused(
    address: str, make: Make
) -> None:
    resolve = resolver_of({"inner.example": address})
    mastodon = make(Guard(resolver=resolve))
    with pytest.raises(DestinationRefused):
        await mastodon.server("inner.example")
    assert resolve.asked == ["inner.example"]


async def test_a_call_is_refused_when_the_name_turns_inward_after_connecting(
    mastodon: Mastodon, make: Make
) -> None:
    """The guard is the client's resolver: a name that passed once and now resolves to
    loopback (DNS rebinding) is refused at the connection, and the instance hears nothing."""
    port = httpx.URL(mastodon.url).port
    resolve = resolver_of({"rebind.example": "127.0.0.1"})
    guarded = make(Guard(resolver=resolve))
    account = Account("token", "1", f"http://rebind.example:{port}")
    with pytest.raises(PlatformError) as refused:
        await guarded.publish(account, Prepared(text="hi"), "key-1")
    assert refused.value.code == ErrorCode.INVALID_REQUEST
    assert "127.0.0.1, a loopback address" in refused.value.message
    assert resolve.asked == ["rebind.example"]
    assert mastodon.instance.received == 0
    # The same call through a client that allows loopback does reach it.
    allowed = make(Guard(resolver=resolve, allow_loopback=True))
    with pytest.raises(PlatformError) as unknown_token:
        await allowed.publish(account, Prepared(text="hi"), "key-1")
    assert unknown_token.value.code == ErrorCode.AUTH_REVOKED
    assert mastodon.instance.received == 1


async def test_a_server_may_connect_only_the_instances_it_names(make: Make) -> None:
    resolve = resolver_of({"mastodon.example": PUBLIC, "other.example": PUBLIC})
    guard = Guard(resolver=resolve)
    only = make(guard, instances=frozenset({"mastodon.example"}))
    assert await only.server("https://mastodon.example") == "https://mastodon.example"
    with pytest.raises(PlatformError) as refused:
        await only.server("other.example")
    assert "does not connect accounts of other.example" in refused.value.message
    assert resolve.asked == ["mastodon.example"]  # the other was never looked up
