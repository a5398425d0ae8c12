"""Posts fire at the right UTC instant across daylight-saving transitions.

A client names local times with explicit offsets (the API requires them); these tests build
those timestamps as a client would, with the IANA rules, around each zone's transitions in
both directions, including both readings of an hour that happens twice.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, MakeTenant
from tests.post.conftest import sandbox_account

# (zone, local wall-clock time, fold, expected UTC instant)
CASES = [
    ("America/New_York", "2027-03-13T09:00", 0, "2027-03-13T14:00"),  # EST, day before
    ("America/New_York", "2027-03-14T09:00", 0, "2027-03-14T13:00"),  # EDT, spring forward
    ("America/New_York", "2027-11-07T01:30", 0, "2027-11-07T05:30"),  # first 01:30 (EDT)
    ("America/New_York", "2027-11-07T01:30", 1, "2027-11-07T06:30"),  # second 01:30 (EST)
    ("Europe/London", "2027-03-28T00:30", 0, "2027-03-28T00:30"),  # GMT, just before
    ("Europe/London", "2027-03-28T02:30", 0, "2027-03-28T01:30"),  # BST, just after
    ("Europe/London", "2027-10-31T01:30", 0, "2027-10-31T00:30"),  # first 01:30 (BST)
    ("Europe/London", "2027-10-31T01:30", 1, "2027-10-31T01:30"),  # second 01:30 (GMT)
    ("Australia/Sydney", "2027-04-04T02:30", 0, "2027-04-03T15:30"),  # first 02:30 (AEDT)
    ("Australia/Sydney", "2027-04-04T02:30", 1, "2027-04-03T16:30"),  # second 02:30 (AEST)
    ("Australia/Sydney", "2027-10-03T09:00", 0, "2027-10-02T22:00"),  # AEDT, spring forward
]


@pytest.mark.parametrize(
    ("zone", "local", "fold", "expected_utc"),
    CASES,
    ids=[f"{c[0]}-{c[1]}-fold{c[2]}" for c in CASES],
)
async def test_a_local_time_fires_at_its_utc_instant(
    make_tenant: MakeTenant,
    worker: Worker,
    clock: FakeClock,
    zone: str,
    local: str,
    fold: int,
    expected_utc: str,
) -> None:
    wall = datetime.fromisoformat(local).replace(tzinfo=ZoneInfo(zone), fold=fold)
    expected = datetime.fromisoformat(expected_utc).replace(tzinfo=UTC)
    assert wall.astimezone(UTC) == expected  # the client's own arithmetic, checked

    clock.set(expected - timedelta(hours=20))
    tenant = await make_tenant(timezone=zone)
    account = await sandbox_account(tenant)
    created = await tenant.post(
        "/v1/posts",
        json={
            "payload": {"text": f"{zone} {local}"},
            "targets": [{"social_account_id": account}],
            "status": "scheduled",
            "publish_at": wall.isoformat(),
        },
    )
    post = created.json()
    assert datetime.fromisoformat(post["publish_at"]) == expected
    shown = datetime.fromisoformat(post["publish_at_local"])
    assert (shown.replace(tzinfo=None), shown.utcoffset()) == (
        wall.replace(tzinfo=None),
        wall.utcoffset(),
    )
    assert post["warnings"] == []

    clock.set(expected - timedelta(seconds=1))
    await worker.tick()
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "queued"
    clock.set(expected)
    await worker.tick()
    assert (await tenant.get(f"/v1/posts/{post['id']}")).json()["status"] == "published"
