"""The LinkedIn emulator is as strict as LinkedIn's documentation, and Crier's adapter
speaks to it as the documentation says: versioned Rest.li calls, the post's URN from
`x-restli-id`, LinkedIn's refusals in the delivery error catalogue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from crier.kit.storage import LocalStorage
from crier.platforms.base import Account, Consent, Prepared
from crier.platforms.errors import ErrorCode, PlatformError
from crier.platforms.linkedin.adapter import LinkedInAdapter
from crier.platforms.linkedin.emulator import Client
from crier.platforms.registry import platform_http
from tests.conftest import FakeClock
from tests.linkedin import LinkedIn, linkedin_network
from tests.mastodon import query_of

BASE = "https://crier.example"
REDIRECT = f"{BASE}/v1/oauth/callback/linkedin"
HEADERS = {"LinkedIn-Version": "202611", "X-Restli-Protocol-Version": "2.0.0"}


@pytest.fixture
async def emulated(clock: FakeClock) -> AsyncIterator[LinkedIn]:
    async with linkedin_network(clock, BASE) as network:
        yield network


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    client = platform_http()
    yield client
    await client.aclose()


def adapter_for(
    li: LinkedIn, client: Client, http: httpx.AsyncClient, clock: FakeClock, path: Path, **kw: Any
) -> LinkedInAdapter:
    return LinkedInAdapter(
        http,
        LocalStorage(path),
        client_id=client.client_id,
        client_secret=client.client_secret,
        api_url=li.url,
        oauth_url=li.oauth_url,
        clock=clock,
        **kw,
    )


async def connected(li: LinkedIn, adapter: LinkedInAdapter) -> tuple[Account, Any]:
    consent = Consent(REDIRECT, "state-1", "v" * 43)
    location = await li.consent(adapter.authorize_url(consent), member="Grace Hopper")
    tokens = await adapter.exchange(consent, query_of(location)["code"])
    return Account(tokens.access_token, tokens.external_id), tokens


async def token_of(
    li: LinkedIn,
    scope: str = "openid profile w_member_social",
    member: str = "Ada Lovelace",
    client: Client | None = None,
) -> str:
    client = client or li.client
    query = {
        "response_type": "code",
        "client_id": client.client_id,
        "redirect_uri": REDIRECT,
        "scope": scope,
        "state": "s",
    }
    authorize = str(httpx.URL(f"{li.oauth_url}/authorization", params=query))
    location = await li.consent(authorize, member=member)
    answer = await li.browser.post(
        "/oauth/v2/accessToken",
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": REDIRECT,
            "client_id": client.client_id,
            "client_secret": client.client_secret,
        },
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["expires_in"] == 60 * 24 * 3600
    assert answer.json()["refresh_token_expires_in"] == 365 * 24 * 3600
    return str(answer.json()["access_token"])


async def test_rest_calls_need_an_active_version_and_restli_2(emulated: LinkedIn) -> None:
    auth = {"Authorization": f"Bearer {await token_of(emulated)}"}
    me = (await emulated.browser.get("/v2/userinfo", headers=auth)).json()
    body = {
        "author": f"urn:li:person:{me['sub']}",
        "commentary": "Hello",
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED"},
        "lifecycleState": "PUBLISHED",
    }

    async def create(headers: dict[str, str], json: Any = body) -> httpx.Response:
        return await emulated.browser.post("/rest/posts", json=json, headers=auth | headers)

    missing = await create({"X-Restli-Protocol-Version": "2.0.0"})
    assert (missing.status_code, missing.json()["code"]) == (400, "VERSION_MISSING")
    old = await create(HEADERS | {"LinkedIn-Version": "202001"})
    assert (old.status_code, old.json()["code"]) == (426, "NONEXISTENT_VERSION")
    no_restli = await create({"LinkedIn-Version": "202611"})
    assert no_restli.status_code == 400
    partial = await create(HEADERS, {"commentary": "x", "text": "y"})
    assert partial.status_code == 422
    assert "/text :: unrecognized field" in partial.json()["message"]
    assert "/author :: field is required" in partial.json()["message"]
    stranger = await create(HEADERS, body | {"author": "urn:li:person:someone"})
    assert stranger.status_code == 403
    made = await create(HEADERS)
    assert made.status_code == 201
    assert made.content == b""
    assert made.headers["x-restli-id"].startswith("urn:li:share:")
    again = await create(HEADERS)
    assert again.status_code == 422
    assert again.json()["message"] == f"Content is a duplicate of {made.headers['x-restli-id']}"
    assert again.json()["errorDetails"]["inputErrors"][0]["code"] == "DUPLICATE_POST"


async def test_the_token_endpoint_wants_the_app_in_the_form_and_a_fresh_code(
    emulated: LinkedIn, clock: FakeClock
) -> None:
    query = {
        "response_type": "code",
        "client_id": emulated.client.client_id,
        "redirect_uri": REDIRECT,
        "scope": "openid profile",
        "state": "s",
    }
    url = str(httpx.URL(f"{emulated.oauth_url}/authorization", params=query))
    wrong = await emulated.browser.get(url.replace("crier.example", "elsewhere.example"))
    assert wrong.status_code == 400
    bad_scope = await emulated.browser.get(url.replace("profile", "r_everything"))
    assert query_of(bad_scope.headers["location"])["error"] == "invalid_scope"
    code = query_of(await emulated.consent(url))["code"]
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": REDIRECT,
        "client_id": emulated.client.client_id,
    }
    no_secret = await emulated.browser.post("/oauth/v2/accessToken", data=form)
    assert no_secret.status_code == 401
    clock.advance(timedelta(minutes=31))  # a code lives 30 minutes
    late = await emulated.browser.post(
        "/oauth/v2/accessToken", data=form | {"client_secret": emulated.client.client_secret}
    )
    assert (late.status_code, late.json()["error"]) == (400, "invalid_request")


async def test_images_go_up_for_their_owner_and_must_be_images(emulated: LinkedIn) -> None:
    auth = {"Authorization": f"Bearer {await token_of(emulated)}"}
    me = (await emulated.browser.get("/v2/userinfo", headers=auth)).json()
    owner = f"urn:li:person:{me['sub']}"

    async def initialize(for_owner: str) -> httpx.Response:
        return await emulated.browser.post(
            "/rest/images",
            params={"action": "initializeUpload"},
            json={"initializeUploadRequest": {"owner": for_owner}},
            headers=auth | HEADERS,
        )

    assert (await initialize("urn:li:person:another")).status_code == 403
    value = (await initialize(owner)).json()["value"]
    path = httpx.URL(value["uploadUrl"]).raw_path.decode()
    assert (
        await emulated.browser.put(path, content=b"not an image", headers=auth)
    ).status_code == 400
    state = await emulated.browser.get(f"/rest/images/{value['image']}", headers=auth | HEADERS)
    assert state.json()["status"] == "WAITING_UPLOAD"


async def test_the_adapter_maps_linkedins_refusals(
    emulated: LinkedIn, http: httpx.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    adapter = adapter_for(emulated, emulated.client, http, clock, tmp_path)
    account, tokens = await connected(emulated, adapter)
    assert tokens.reconnect_by == clock.now() + timedelta(days=365)
    made = await adapter.publish(account, Prepared("Counted"), "d1")
    assert await adapter.metrics(account, made.external_id) == {"likes": 0, "comments": 0}
    assert await adapter.account_metrics(account) == {}  # a member's network size is partners'
    with pytest.raises(PlatformError) as duplicate:
        await adapter.publish(account, Prepared("Counted"), "d2")
    assert duplicate.value.code == ErrorCode.CONTENT_REJECTED
    assert duplicate.value.existing is not None
    assert duplicate.value.existing.external_id == made.external_id
    retired = adapter_for(emulated, emulated.client, http, clock, tmp_path, version="202001")
    with pytest.raises(PlatformError) as old:
        await retired.publish(account, Prepared("Old version"), "d3")
    assert old.value.code == ErrorCode.INVALID_REQUEST
    assert "not active" in old.value.message
    refreshed = await adapter.refresh(str(tokens.refresh_token), None)
    assert refreshed.reconnect_by == tokens.reconnect_by  # a refresh never extends the grant
    with pytest.raises(PlatformError) as spent:
        await adapter.refresh(str(tokens.refresh_token), None)
    assert spent.value.code == ErrorCode.AUTH_EXPIRED


async def test_an_app_without_refresh_tokens_must_reconnect_when_the_token_ends(
    emulated: LinkedIn, http: httpx.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    plain = emulated.network.register_client([REDIRECT], refresh_tokens=False)
    adapter = adapter_for(emulated, plain, http, clock, tmp_path)
    _, tokens = await connected(emulated, adapter)
    assert tokens.refresh_token is None
    assert tokens.reconnect_by == tokens.expires_at == clock.now() + timedelta(days=60)


async def test_a_video_is_finalized_only_with_every_part_and_its_etag(emulated: LinkedIn) -> None:
    auth = {"Authorization": f"Bearer {await token_of(emulated)}"} | HEADERS
    me = (await emulated.browser.get("/v2/userinfo", headers=auth)).json()
    owner = f"urn:li:person:{me['sub']}"

    async def videos(action: str, body: dict[str, Any]) -> httpx.Response:
        return await emulated.browser.post(
            "/rest/videos", params={"action": action}, json=body, headers=auth
        )

    tiny = await videos(
        "initializeUpload", {"initializeUploadRequest": {"owner": owner, "fileSizeBytes": 10}}
    )
    assert tiny.status_code == 422
    size = 5 * 2**20
    begun = (
        await videos(
            "initializeUpload", {"initializeUploadRequest": {"owner": owner, "fileSizeBytes": size}}
        )
    ).json()["value"]
    steps = begun["uploadInstructions"]
    assert [(s["firstByte"], s["lastByte"]) for s in steps] == [(0, 2**22 - 1), (2**22, size - 1)]
    content = b"\x00\x00\x00\x18ftypmp42" + bytes(size - 12)
    paths = [httpx.URL(s["uploadUrl"]).raw_path.decode() for s in steps]
    short = await emulated.browser.put(paths[0], content=content[:10], headers=auth)
    assert short.status_code == 400
    first = await emulated.browser.put(paths[0], content=content[: 2**22], headers=auth)
    finalize = {"video": begun["video"], "uploadToken": begun["uploadToken"]}
    incomplete = await videos(
        "finalizeUpload",
        {"finalizeUploadRequest": finalize | {"uploadedPartIds": [first.headers["etag"]]}},
    )
    assert incomplete.status_code == 400
    second = await emulated.browser.put(paths[1], content=content[2**22 :], headers=auth)
    swapped = [second.headers["etag"], first.headers["etag"]]
    wrong = await videos(
        "finalizeUpload", {"finalizeUploadRequest": finalize | {"uploadedPartIds": swapped}}
    )
    assert wrong.status_code == 400
    done = await videos(
        "finalizeUpload",
        {"finalizeUploadRequest": finalize | {"uploadedPartIds": swapped[::-1]}},
    )
    assert done.status_code == 200, done.text
    state = await emulated.browser.get(f"/rest/videos/{begun['video']}", headers=auth)
    assert state.json()["status"] == "PROCESSING"


async def test_a_page_is_posted_for_only_by_a_member_with_a_posting_role_and_the_scope(
    emulated: LinkedIn,
) -> None:
    network = emulated.network
    grace, alan = network.member_named("Grace Hopper"), network.member_named("Alan Turing")
    page = network.add_organization("Acme", "acme", {grace.id: "ADMINISTRATOR"})
    network.add_organization("Other", "other", {grace.id: "ANALYST", alan.id: "ADMINISTRATOR"})
    scopes = "w_organization_social r_organization_social r_organization_admin"
    pages = emulated.pages_client
    auth = {"Authorization": f"Bearer {await token_of(emulated, scopes, 'Grace Hopper', pages)}"}
    member_only = {"Authorization": f"Bearer {await token_of(emulated, member='Grace Hopper')}"}
    alans = {"Authorization": f"Bearer {await token_of(emulated, scopes, 'Alan Turing', pages)}"}

    acls = await emulated.browser.get(
        "/rest/organizationAcls",
        params={"q": "roleAssignee", "state": "APPROVED", "count": 1},
        headers=auth | HEADERS,
    )
    assert acls.status_code == 200, acls.text
    assert [(e["organization"], e["role"]) for e in acls.json()["elements"]] == [
        (page.urn, "ADMINISTRATOR")
    ]
    assert acls.json()["paging"]["total"] == 2
    unscoped = await emulated.browser.get(
        "/rest/organizationAcls", params={"q": "roleAssignee"}, headers=member_only | HEADERS
    )
    assert (unscoped.status_code, unscoped.json()["code"]) == (403, "ACCESS_DENIED")
    shown = await emulated.browser.get(f"/rest/organizations/{page.id}", headers=auth | HEADERS)
    assert (shown.json()["vanityName"], shown.json()["localizedName"]) == ("acme", "Acme")

    body = {
        "author": page.urn,
        "commentary": "From the page",
        "visibility": "PUBLIC",
        "distribution": {"feedDistribution": "MAIN_FEED"},
        "lifecycleState": "PUBLISHED",
    }
    for refused in (member_only, alans):  # no w_organization_social; no role on the page
        answer = await emulated.browser.post("/rest/posts", json=body, headers=refused | HEADERS)
        assert (answer.status_code, answer.json()["code"]) == (403, "ACCESS_DENIED")
    made = await emulated.browser.post("/rest/posts", json=body, headers=auth | HEADERS)
    assert made.status_code == 201, made.text
    as_grace = body | {"author": f"urn:li:person:{grace.id}"}
    own = await emulated.browser.post("/rest/posts", json=as_grace, headers=auth | HEADERS)
    assert own.status_code == 403  # the page scopes do not post as the member
    [stored] = network.posts_by(page.urn)
    assert stored.urn == made.headers["x-restli-id"]


async def test_the_adapter_connects_a_page_the_member_may_post_for(
    emulated: LinkedIn, http: httpx.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    network = emulated.network
    grace = network.member_named("Grace Hopper")
    for n in range(120):  # more roles than one page of them
        network.add_organization(f"Watched {n}", f"watched-{n}", {grace.id: "ANALYST"})
    page = network.add_organization(
        "Acme", "Acme-Corp", {grace.id: "DIRECT_SPONSORED_CONTENT_POSTER"}
    )
    pages = emulated.pages_client
    adapter = adapter_for(
        emulated,
        emulated.client,
        http,
        clock,
        tmp_path,
        pages_client_id=pages.client_id,
        pages_client_secret=pages.client_secret,
    )
    consent = Consent(REDIRECT, "state-1", "v" * 43, organization="acme-corp")
    assert query_of(adapter.authorize_url(consent))["client_id"] == pages.client_id
    location = await emulated.consent(adapter.authorize_url(consent), member="Grace Hopper")
    tokens = await adapter.exchange(consent, query_of(location)["code"])
    assert (tokens.external_id, tokens.handle, tokens.display_name) == (
        page.urn,
        "Acme-Corp",
        "Acme",
    )
    made = await adapter.publish(
        Account(tokens.access_token, tokens.external_id), Prepared("Hi"), "k"
    )
    assert [p.urn for p in network.posts_by(page.urn)] == [made.external_id]
    assert await adapter.metrics(Account(tokens.access_token, page.urn), made.external_id) == {
        "likes": 0,
        "comments": 0,
    }
    page.followers = 4_096
    as_page = Account(tokens.access_token, page.urn)
    assert await adapter.account_metrics(as_page) == {"followers": 4_096}
    sizes = f"/rest/networkSizes/{page.urn}"
    auth = {"Authorization": f"Bearer {tokens.access_token}"}
    wrong_edge = await emulated.browser.get(
        sizes, params={"edgeType": "CompanyFollowedByMember"}, headers=auth | HEADERS
    )
    assert (wrong_edge.status_code, wrong_edge.json()["code"]) == (400, "ILLEGAL_ARGUMENT")
    unversioned = await emulated.browser.get(
        sizes, params={"edgeType": "COMPANY_FOLLOWED_BY_MEMBER"}, headers=auth
    )
    assert unversioned.status_code == 400

    refreshed = await adapter.refresh(str(tokens.refresh_token), None, page.urn)  # the pages app's
    assert refreshed.access_token != tokens.access_token


async def test_pages_go_through_the_one_app_when_it_has_every_product(
    emulated: LinkedIn, http: httpx.AsyncClient, clock: FakeClock, tmp_path: Path
) -> None:
    network = emulated.network
    grace = network.member_named("Grace Hopper")
    page = network.add_organization("Acme", "acme", {grace.id: "ADMINISTRATOR"})
    page_consent = Consent(REDIRECT, "state-1", "v" * 43, organization="acme")
    members_only = adapter_for(emulated, emulated.client, http, clock, tmp_path)
    refused = await emulated.browser.get(members_only.authorize_url(page_consent))
    # LinkedIn's own refusal, before any consent page
    assert query_of(refused.headers["location"])["error"] == "unauthorized_scope_error"

    both = network.register_client([REDIRECT])  # an app LinkedIn granted every product
    adapter = adapter_for(emulated, both, http, clock, tmp_path)
    location = await emulated.consent(adapter.authorize_url(page_consent), member="Grace Hopper")
    tokens = await adapter.exchange(page_consent, query_of(location)["code"])
    assert tokens.external_id == page.urn
    refreshed = await adapter.refresh(str(tokens.refresh_token), None, page.urn)
    assert refreshed.reconnect_by == tokens.reconnect_by
