"""LinkedIn: a member connected through the consent page, posts with images and alt text
published by the scheduler exactly once (a resend is settled by LinkedIn's duplicate
answer), little text escaped, tokens refreshed within the grant's fixed life."""

from __future__ import annotations

import struct
from datetime import datetime, timedelta

import pytest

from crier.kit.db import Database
from crier.platforms.linkedin.rules import RESERVED
from crier.scheduler.worker import Worker
from tests.conftest import FakeClock, Tenant
from tests.linkedin import LinkedIn, connect_linkedin, connect_linkedin_page, new_name, new_page
from tests.media.conftest import box
from tests.scheduler.test_mastodon import image, publish_due, schedule, schedule_refused
from tests.scheduler.test_metric_collection import collected_an_hour_on
from tests.scheduler.test_refresh import events_of
from tests.scheduler.test_worker import deliveries


@pytest.fixture
def platform_timeout() -> float:
    return 0.5  # LinkedIn is made to hang after storing a post


async def test_a_post_with_images_and_alt_text_is_published_once(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    first = await image(tenant, alt_text="The team at the summit")
    second = await image(tenant)
    linkedin.network.faults.processing_polls = 2
    words = f"Spring hiring (3 roles) #jobs @team_lead — reserved: {RESERVED}"
    post = await schedule(
        tenant,
        account,
        clock,
        text=words,
        media=[first, second],
        settings={"visibility": "CONNECTIONS", "disable_reshare": True},
    )
    await publish_due(worker, clock)

    [stored] = linkedin.posts_of(account["handle"])
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    assert stored.text == words  # escaped as little text, shown as written
    assert stored.commentary != words
    assert (stored.visibility, stored.reshare_disabled) == ("CONNECTIONS", True)
    assert [i.get("altText") for i in stored.images] == ["The team at the summit", None]
    assert delivery["platform_post_id"] == stored.urn
    assert delivery["permalink"] == f"https://www.linkedin.com/feed/update/{stored.urn}/"
    await worker.tick()
    assert len(linkedin.posts_of(account["handle"])) == 1


async def test_a_call_that_hangs_after_linkedin_stored_the_post_is_settled_by_the_duplicate(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    """The send timed out after LinkedIn stored the post: the resend is refused as a
    duplicate naming that post, which is the delivery's."""
    account = await connect_linkedin(tenant, linkedin)
    linkedin.network.faults.hang_after_store = 1
    linkedin.network.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock, text="Posted once, whatever happens")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["attempts"][0]["error_code"]) == ("pending", "timeout")

    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    [stored] = linkedin.posts_of(account["handle"])
    assert delivery["status"] == "published", delivery
    assert delivery["platform_post_id"] == stored.urn


async def test_a_duplicate_on_a_first_send_is_refused_for_good(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    first = await schedule(tenant, account, clock, text="Said once")
    await publish_due(worker, clock)
    second = await schedule(tenant, account, clock, text="Said once")
    await publish_due(worker, clock)
    [refused] = await deliveries(tenant, second["id"])
    assert (refused["status"], refused["error_code"]) == ("failed", "content_rejected")
    assert "duplicate" in refused["attempts"][0]["message"]
    [published] = await deliveries(tenant, first["id"])
    assert published["status"] == "published"
    assert len(linkedin.posts_of(account["handle"])) == 1


async def test_an_unknown_outcome_is_not_sent_again_after_a_day(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    linkedin.network.faults.hang_after_store = 1
    linkedin.network.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock, text="Came back the next day")
    await publish_due(worker, clock)
    clock.advance(timedelta(days=1))
    await worker.tick()
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "outcome_unknown")
    assert len(linkedin.posts_of(account["handle"])) == 1


async def test_text_over_3000_characters_and_unknown_settings_are_refused(
    tenant: Tenant, linkedin: LinkedIn, clock: FakeClock
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    assert (await schedule(tenant, account, clock, text="é" * 3000))["status"] == "scheduled"
    body = await schedule_refused(tenant, account, clock, "é" * 3001)
    assert "text_too_long" in str(body)
    await schedule_refused(tenant, account, clock, "hi", {"visibility": "EVERYONE"})
    await schedule_refused(tenant, account, clock, "hi", {"audience": "all"})


async def test_the_account_shows_when_it_must_be_reconnected(
    tenant: Tenant, linkedin: LinkedIn, clock: FakeClock
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    ends = datetime.fromisoformat(account["reconnect_by"].replace("Z", "+00:00"))
    assert ends == clock.now() + timedelta(days=365)  # the refresh token's fixed life
    expires = datetime.fromisoformat(account["token_expires_at"].replace("Z", "+00:00"))
    assert expires == clock.now() + timedelta(days=60)


async def test_an_expired_token_is_refreshed_and_the_grant_keeps_its_end(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    clock.advance(timedelta(days=61))
    post = await schedule(tenant, account, clock, text="Two months on")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    shown = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert shown["reconnect_by"] == account["reconnect_by"]
    assert shown["token_expires_at"] > account["token_expires_at"]


async def test_a_revoked_token_makes_the_account_revoked_and_fails_its_post(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock, db: Database
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    for token in linkedin.network.tokens.values():
        token.revoked = True  # the member removed Crier in LinkedIn's settings
    post = await schedule(tenant, account, clock, text="Never sent")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_revoked")
    shown = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert shown["status"] == "revoked"
    [expired] = await events_of(db, tenant, "social_account.expired")
    assert expired["id"] == account["id"]
    assert linkedin.posts_of(account["handle"]) == []


async def test_a_video_goes_up_in_parts_and_is_published_once_processed(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    account = await connect_linkedin(tenant, linkedin)
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    content = ftyp + box(b"moov", box(b"mvhd", bytes(100))) + box(b"mdat", bytes(5 * 2**20))
    uploaded = await tenant.post("/v1/media", files={"file": ("clip.mp4", content, "video/mp4")})
    assert uploaded.status_code == 201, uploaded.text
    linkedin.network.faults.video_polls = 2
    post = await schedule(
        tenant, account, clock, text="Our launch, in a minute", media=[uploaded.json()["id"]]
    )
    await publish_due(worker, clock)

    [stored] = linkedin.posts_of(account["handle"])
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    [attached] = stored.images
    video = linkedin.network.videos[attached["id"]]
    assert len(video.parts) == 2  # 4 MiB, then the rest
    assert b"".join(video.parts[i] for i in sorted(video.parts)) == content
    assert (video.finalized, video.polls_left) == (True, 0)


async def test_a_company_pages_post_is_by_the_page_and_published_once_through_a_timeout(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    """The page is the author of its posts and the owner of their images; a send that hung
    after LinkedIn stored it is settled by the page's own duplicate answer."""
    admin = new_name()
    page = new_page(linkedin, admin, role="CONTENT_ADMINISTRATOR")
    account = await connect_linkedin_page(tenant, linkedin, page, admin)
    await connect_linkedin(tenant, linkedin, admin)  # the member's own account beside it
    picture = await image(tenant, alt_text="Our new office")
    linkedin.network.faults.hang_after_store = 1
    linkedin.network.faults.hang_seconds = 3
    post = await schedule(tenant, account, clock, text="We moved", media=[picture])
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["attempts"][0]["error_code"]) == ("pending", "timeout")

    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    [stored] = linkedin.network.posts_by(page.urn)
    assert delivery["status"] == "published", delivery
    assert delivery["platform_post_id"] == stored.urn
    assert linkedin.network.images[stored.images[0]["id"]].owner == page.urn
    assert stored.images[0]["altText"] == "Our new office"
    assert linkedin.posts_of(admin) == []  # nothing on the member's own feed


async def test_a_page_whose_member_lost_the_role_fails_its_post_as_revoked(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    admin = new_name()
    page = new_page(linkedin, admin)
    account = await connect_linkedin_page(tenant, linkedin, page, admin)
    linkedin.network.acls.clear()  # another administrator took the member's role away
    post = await schedule(tenant, account, clock, text="No longer ours to say")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert (delivery["status"], delivery["error_code"]) == ("failed", "auth_revoked")
    assert linkedin.network.posts_by(page.urn) == []


async def test_a_pages_expired_token_is_refreshed_through_the_pages_app(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock
) -> None:
    admin = new_name()
    page = new_page(linkedin, admin)
    account = await connect_linkedin_page(tenant, linkedin, page, admin)
    clock.advance(timedelta(days=61))
    post = await schedule(tenant, account, clock, text="Two months on, from the page")
    await publish_due(worker, clock)
    [delivery] = await deliveries(tenant, post["id"])
    assert delivery["status"] == "published", delivery
    shown = (await tenant.get(f"/v1/social-accounts/{account['id']}")).json()
    assert shown["token_expires_at"] > account["token_expires_at"]
    live = [t for t in linkedin.network.tokens.values() if not t.revoked and not t.refresh]
    assert {t.client_id for t in live if t.expires_at > clock.now()} >= {
        linkedin.pages_client.client_id
    }


async def test_a_pages_figures_and_followers_are_collected_and_a_member_has_no_followers(
    tenant: Tenant, linkedin: LinkedIn, worker: Worker, clock: FakeClock, db: Database
) -> None:
    admin = new_name()
    page = new_page(linkedin, admin, role="ADMINISTRATOR")
    account = await connect_linkedin_page(tenant, linkedin, page, admin)
    member = await connect_linkedin(tenant, linkedin, admin)
    page.followers = 5_000
    for target in (account, member):
        post = await schedule(tenant, target, clock, text=f"Counted {target['id']}")
        await publish_due(worker, clock)
        [delivery] = await deliveries(tenant, post["id"])
        figures, own = await collected_an_hour_on(tenant, worker, clock, db, delivery)
        assert figures == {"likes": 0, "comments": 0, "engagements": 0}
        assert own == ({"followers": 5_000} if target is account else {})
