"""Which due deliveries are sent, looked up first or refused: a pure decision."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

from crier.delivery.repository import Due
from crier.platforms.errors import ErrorCode
from crier.post.schemas import PostPayload
from crier.scheduler.sends import PostToSend, plan_sends

NOW = datetime(2028, 2, 29, 23, 59, tzinfo=UTC)
BASE = "https://crier.example"


@dataclass
class Account:
    status: str = "active"
    token_expires_at: datetime | None = None
    refresh_token: bytes | None = None
    access_token: bytes | None = b"sealed"
    external_id: str = "ext-1"
    server_url: str | None = None


@dataclass
class Asset:
    id: UUID = field(default_factory=uuid4)
    category: str = "image"
    content_type: str = "image/png"
    storage_path: str = "ws/asset/original.png"
    alt_text: str | None = None
    variants: list[dict[str, Any]] = field(default_factory=lambda: [{"name": "square"}])


def due(post: UUID, account: UUID, platform: str = "sandbox", **kw: Any) -> Due:
    fields: dict[str, Any] = {"attempts": 0, "uncertain": False} | kw
    return Due(uuid4(), post, account, platform, fields["attempts"], fields["uncertain"], {})


def test_each_delivery_is_sent_refused_or_looked_up_first() -> None:
    post, asset = uuid4(), Asset()
    ok, revoked, expired, gone, other = (uuid4() for _ in range(5))
    accounts = {
        ok: Account(),
        revoked: Account(status="revoked"),
        expired: Account(token_expires_at=NOW),
        other: Account(),
    }
    deliveries = [
        first := due(post, ok),
        retry := due(post, ok, attempts=1),
        uncertain := due(post, ok, attempts=1, uncertain=True),
        due(post, revoked),
        due(post, expired),
        due(post, gone),
        unknown := due(post, other, platform="x"),
    ]
    posts = {
        post: PostToSend(
            PostPayload(text="Hi", media_ids=[asset.id]), NOW - timedelta(seconds=1), [asset]
        )
    }
    plan = plan_sends(deliveries, posts, accounts, {"sandbox"}, NOW, BASE)

    assert [(s.delivery_id, s.first_due) for s in plan.sends] == [
        (first.id, NOW - timedelta(seconds=1)),  # its lateness is measured
        (retry.id, None),
    ]
    [sent, _] = plan.sends
    assert (sent.platform, sent.account.access_token, sent.content.text) == (
        "sandbox",
        b"sealed",
        "Hi",
    )
    assert [m.url for m in sent.content.media] == [
        f"{BASE}/v1/media/{asset.id}/file?variant=square"
    ]
    assert len({s.attempt_id for s in plan.sends}) == 2
    assert [r.delivery_id for r in plan.rechecks] == [uncertain.id]
    assert [(r.code, r.delivery_id) for r in plan.refusals] == [
        (ErrorCode.AUTH_REVOKED, deliveries[3].id),
        (ErrorCode.AUTH_EXPIRED, deliveries[4].id),
        (ErrorCode.AUTH_REVOKED, deliveries[5].id),
        (ErrorCode.PLATFORM_NOT_CONFIGURED, unknown.id),
    ]


def test_an_uncertain_delivery_whose_account_is_unusable_is_refused_not_looked_up() -> None:
    post, account = uuid4(), uuid4()
    posts = {post: PostToSend(PostPayload(text="Hi"), NOW, [])}
    plan = plan_sends(
        [due(post, account, attempts=1, uncertain=True)],
        posts,
        {account: Account(status="disconnected")},
        {"sandbox"},
        NOW,
        BASE,
    )
    assert (plan.sends, plan.rechecks) == ([], [])
    assert [r.code for r in plan.refusals] == [ErrorCode.ACCOUNT_DISCONNECTED]
