"""Plans and their limits. Exceeding one is a `plan-limit-exceeded` problem."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from crier.kit.errors import PlanLimitExceeded


class PlanName(StrEnum):
    FREE = "free"
    PRO = "pro"
    AGENCY = "agency"


@dataclass(frozen=True)
class Limits:
    members: int
    social_accounts: int
    scheduled_posts_per_month: int
    media_upload_bytes: int

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


MiB = 1024 * 1024

PLANS: dict[PlanName, Limits] = {
    PlanName.FREE: Limits(
        members=3, social_accounts=5, scheduled_posts_per_month=100, media_upload_bytes=25 * MiB
    ),
    PlanName.PRO: Limits(
        members=15,
        social_accounts=25,
        scheduled_posts_per_month=2_000,
        media_upload_bytes=250 * MiB,
    ),
    PlanName.AGENCY: Limits(
        members=100,
        social_accounts=250,
        scheduled_posts_per_month=50_000,
        media_upload_bytes=1024 * MiB,
    ),
}


def limits_of(plan: str) -> Limits:
    return PLANS[PlanName(plan)]


def enforce(plan: str, limit: str, in_use: int, adding: int = 1) -> None:
    """Raise `plan-limit-exceeded` if adding `adding` to `in_use` would pass the limit."""
    value = getattr(limits_of(plan), limit)
    if in_use + adding > value:
        raise PlanLimitExceeded(plan, limit, value)


def month_of(instant: datetime, timezone: str) -> tuple[datetime, datetime]:
    """The calendar month containing `instant` in `timezone`: its first instant and the next
    month's, so that a post at 23:30 on the 31st local time counts in that month."""
    zone = ZoneInfo(timezone)
    local = instant.astimezone(zone)
    start = local.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    year, month = (start.year + 1, 1) if start.month == 12 else (start.year, start.month + 1)
    return start, start.replace(year=year, month=month)
