"""X's adapter on its own, against the emulator: both kinds of client, refresh rotation and
its refusal, metrics, a look-up by text, and X's refusals in the catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from crier.kit.storage import LocalStorage
from crier.platforms.base import Account, Consent, Prepared
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.registry import platform_http
from crier.platforms.x.adapter import XAdapter
from crier.platforms.x.emulator import Client
from tests.conftest import FakeClock
from tests.mastodon import query_of
from tests.x import X, x_network

BASE = "https://crier.example"
REDIRECT = f"{BASE}/v1/oauth/callback/x"


@pytest.fixture
async def emulated(clock: FakeClock) -> AsyncIterator[X]:
    async with x_network(clock, BASE) as network:
        yield network


@pytest.fixture
async def adapter(emulated: X, clock: FakeClock, tmp_path: Path) -> AsyncIterator[XAdapter]:
    http = platform_http()
    yield adapter_for(emulated, emulated.client, http, clock, tmp_path)
    await http.aclose()


def adapter_for(x: X, client: Client, http: object, clock: FakeClock, path: Path) -> XAdapter:
    return XAdapter(
        http,  # type: ignore[arg-type]
        LocalStorage(path),
        client_id=client.client_id,
        client_secret=client.client_secret,
        api_url=x.url,
        authorize_url=x.authorize_url,
        clock=clock,
    )


async def connected(x: X, adapter: XAdapter, username: str = "zoe") -> Account:
    consent = Consent(REDIRECT, "state-1", "v" * 43)
    location = await x.consent(adapter.authorize_url(consent), username=username)
    tokens = await adapter.exchange(consent, query_of(location)["code"])
    assert tokens.handle == username
    return Account(tokens.access_token, tokens.external_id)


async def test_a_public_client_sends_its_id_in_the_form(
    emulated: X, clock: FakeClock, tmp_path: Path
) -> None:
    public = emulated.network.register_client([REDIRECT], confidential=False)
    http = platform_http()
    try:
        adapter = adapter_for(emulated, public, http, clock, tmp_path)
        account = await connected(emulated, adapter)
        assert account.external_id == emulated.network.user_named("zoe").id
    finally:
        await http.aclose()


async def test_a_refresh_rotates_and_a_spent_one_expires_the_account(
    emulated: X, adapter: XAdapter
) -> None:
    consent = Consent(REDIRECT, "state-1", "v" * 43)
    location = await emulated.consent(adapter.authorize_url(consent))
    first = await adapter.exchange(consent, query_of(location)["code"])
    assert first.refresh_token
    second = await adapter.refresh(first.refresh_token, None)
    assert second.refresh_token
    assert second.refresh_token != first.refresh_token
    with pytest.raises(PlatformError) as refused:
        await adapter.refresh(first.refresh_token, None)
    assert refused.value.code == ErrorCode.AUTH_EXPIRED
    assert not refused.value.retryable
    assert "token was invalid" in refused.value.message


async def test_metrics_and_a_post_x_does_not_have(emulated: X, adapter: XAdapter) -> None:
    account = await connected(emulated, adapter)
    made = await adapter.publish(account, Prepared("Counted"), "d1")
    counts = await adapter.metrics(account, made.external_id)
    assert counts["likes"] == 0
    assert "impressions" in counts
    with pytest.raises(PlatformError) as missing:
        await adapter.metrics(account, "1")
    assert missing.value.code == ErrorCode.INVALID_REQUEST
    assert "Could not find tweet" in missing.value.message


async def test_an_accounts_own_figures(emulated: X, adapter: XAdapter) -> None:
    account = await connected(emulated, adapter, "counted")
    emulated.network.user_named("counted").followers = 321
    await adapter.publish(account, Prepared("One"), "d1")
    assert await adapter.account_metrics(account) == {
        "followers": 321,
        "following": 0,
        "posts": 1,
        "listed": 0,
    }


async def test_a_post_is_found_by_its_text_since_its_first_attempt(
    emulated: X, adapter: XAdapter, clock: FakeClock
) -> None:
    account = await connected(emulated, adapter)
    words = "Fish & chips <tonight> at https://example.com/menu?day=fri"
    since = clock.now()
    made = await adapter.publish(account, Prepared(words), "d1")
    found = await adapter.find(account, "d1", Prepared(words), since)
    assert found is not None
    assert found.external_id == made.external_id
    assert await adapter.find(account, "d2", Prepared("Something else"), since) is None
    taken = frozenset({made.external_id})  # another delivery's post, of the same text
    assert await adapter.find(account, "d3", Prepared(words), since, taken) is None
    clock.advance(timedelta(hours=1))
    later = clock.now()
    assert await adapter.find(account, "d1", Prepared(words), later) is None  # before `since`


async def test_a_token_without_the_scope_to_post_is_revoked_access_not_rejected_content(
    emulated: X, adapter: XAdapter
) -> None:
    account = await connected(emulated, adapter)
    emulated.network.tokens[account.access_token].scopes.discard("tweet.write")
    with pytest.raises(PlatformError) as refused:
        await adapter.publish(account, Prepared("No scope"), "d1")
    assert refused.value.code == ErrorCode.AUTH_REVOKED
    assert emulated.network.tweets == {}


async def test_revoking_spends_the_token_at_x(emulated: X, adapter: XAdapter) -> None:
    account = await connected(emulated, adapter)
    await adapter.revoke(account, None)
    with pytest.raises(PlatformError) as refused:
        await adapter.publish(account, Prepared("After revoking"), "d1")
    assert refused.value.code == ErrorCode.AUTH_EXPIRED
