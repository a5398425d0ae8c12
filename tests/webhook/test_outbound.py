"""The destination guard: what a webhook may be sent to, decided before any connection.

Host names here exist only for the injected resolvers; no test connects anywhere but
127.0.0.1."""

from __future__ import annotations

import pytest

from crier.kit.db import Database
from crier.kit.outbound import DestinationRefused, Guard, GuardedResolver
from crier.webhook.dispatcher import Dispatcher
from tests.conftest import FakeClock, Tenant
from tests.post.conftest import at, create, draft_body, sandbox_account
from tests.webhook.conftest import Receiver, add_endpoint, deliver_due


def resolving_to(*addresses: str, allow_loopback: bool = False) -> GuardedResolver:
    """The dispatcher's resolver over a guard whose lookups answer `addresses`."""

    async def resolver(host: str, port: int) -> list[str]:
        return list(addresses)

    return GuardedResolver(Guard(resolver=resolver, allow_loopback=allow_loopback))


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.20.0.1", "private"),
        ("192.168.0.10", "private"),
        ("169.254.169.254", "link-local"),
        ("fe80::1", "link-local"),
        ("fd00:ec2::254", "private"),
        ("::ffff:192.168.0.1", "private"),
        ("100.100.100.200", "reserved or shared"),
        ("0.0.0.0", "private"),  # noqa: S104 - an address refused, not bound
    ],
)
async def test_addresses_outside_the_public_internet_are_refused(address: str, kind: str) -> None:
    with pytest.raises(DestinationRefused, match=kind):
        await resolving_to(address).resolve("hooks.crier-guard.invalid", 443)


async def test_one_private_address_among_public_ones_is_enough_to_refuse() -> None:
    with pytest.raises(DestinationRefused, match=r"10\.0\.0\.7"):
        await resolving_to("93.184.215.14", "10.0.0.7").resolve("mixed.crier-guard.invalid", 443)


async def test_a_public_address_passes_and_loopback_only_when_allowed() -> None:
    public = await resolving_to("93.184.215.14").resolve("public.crier-guard.invalid", 443)
    assert [(r["host"], r["port"]) for r in public] == [("93.184.215.14", 443)]

    local = resolving_to("127.0.0.1", "::1", allow_loopback=True)
    assert [r["host"] for r in await local.resolve("local.invalid", 9)] == ["127.0.0.1", "::1"]
    with pytest.raises(DestinationRefused):
        await resolving_to("127.0.0.1", "::1").resolve("local.invalid", 9)
    # A literal address in a URL is checked without any lookup.
    Guard(allow_loopback=True).check_literal("http://127.0.0.1:9/")
    with pytest.raises(DestinationRefused, match="private"):
        Guard(allow_loopback=True).check_literal("http://10.0.0.1/")


async def test_an_unresolvable_host_is_refused() -> None:
    async def nowhere(host: str, port: int) -> list[str]:
        raise OSError("Name or service not known")

    with pytest.raises(DestinationRefused, match="could not be resolved"):
        await GuardedResolver(Guard(resolver=nowhere)).resolve("gone.crier-guard.invalid", 443)


async def test_redirects_are_not_followed(
    tenant: Tenant, clock: FakeClock, receiver: Receiver, dispatcher: Dispatcher, db: Database
) -> None:
    endpoint = await add_endpoint(tenant, f"{receiver.url}/hooks")
    # Were it followed, the redirect would reach the receiver again (never leave loopback).
    receiver.script = [(307, {"Location": f"{receiver.url}/redirected"})]
    account = await sandbox_account(tenant)
    await create(tenant, draft_body(account, status="scheduled", publish_at=at(clock, hours=1)))
    await deliver_due(dispatcher)
    assert [c.path for c in receiver.calls] == ["/hooks"]
    listed = (await tenant.get(f"/v1/webhook-endpoints/{endpoint['id']}/deliveries")).json()
    delivery = listed["data"][0]
    assert delivery["status"] == "pending"
    assert delivery["attempts"][0]["status_code"] == 307
    assert delivery["attempts"][0]["error"] == "answered 307"


async def test_calls_connect_to_the_addresses_the_guard_checked(
    tenant: Tenant,
    clock: FakeClock,
    receiver: Receiver,
    db: Database,
    scheduler_db: Database,
    dispatcher: Dispatcher,
) -> None:
    """The name exists only for the guard's resolver: the call arriving proves the client
    connected to the address the guard vetted, not to a second lookup's (no DNS rebinding)."""
    looked_up: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    port = receiver.url.rsplit(":", 1)[1]
    await add_endpoint(tenant, f"http://receiver.crier-guard.invalid:{port}/hooks")
    # Set before its first call, when the dispatcher builds its HTTP client.
    dispatcher.guard = Guard(resolver=resolver, allow_loopback=True)
    account = await sandbox_account(tenant)
    await create(tenant, draft_body(account, status="scheduled", publish_at=at(clock, hours=1)))
    await deliver_due(dispatcher)
    # Looked up once, and only by the guard. (The dispatcher serves every workspace of the
    # shared test database: another test's endpoint may come due in the same rounds.)
    assert [h for h in looked_up if h == "receiver.crier-guard.invalid"] == [
        "receiver.crier-guard.invalid"
    ]
    [call] = receiver.calls
    assert call.headers["host"] == f"receiver.crier-guard.invalid:{port}"
