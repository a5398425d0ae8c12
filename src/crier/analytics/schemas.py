"""Analytics as the API shows it: saved views, their data and ad-hoc queries, read from
the daily snapshots alone."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from crier.kit.time import Day
from crier.social_account.schemas import Platform, SocialAccountId

ViewId = Annotated[UUID, Field(description="Identifier of a saved analytics view.")]
NOT_BLANK = r"\S"


class Metric(StrEnum):
    """A figure of the snapshots: a post's (grown that day, added up over the account's
    posts), an account's own (its level that day), or an account's count of the day as
    the network keeps it (a Google location's impressions, clicks, calls, direction
    requests, conversations, bookings and food orders)."""

    IMPRESSIONS = "impressions"
    REACH = "reach"
    ENGAGEMENTS = "engagements"
    LIKES = "likes"
    COMMENTS = "comments"
    SHARES = "shares"
    CLICKS = "clicks"
    VIDEO_VIEWS = "video_views"
    QUOTES = "quotes"
    BOOKMARKS = "bookmarks"
    POSTS_PUBLISHED = "posts_published"
    IMPRESSIONS_DESKTOP_MAPS = "impressions_desktop_maps"
    IMPRESSIONS_DESKTOP_SEARCH = "impressions_desktop_search"
    IMPRESSIONS_MOBILE_MAPS = "impressions_mobile_maps"
    IMPRESSIONS_MOBILE_SEARCH = "impressions_mobile_search"
    CALL_CLICKS = "call_clicks"
    WEBSITE_CLICKS = "website_clicks"
    DIRECTION_REQUESTS = "direction_requests"
    CONVERSATIONS = "conversations"
    BOOKINGS = "bookings"
    FOOD_ORDERS = "food_orders"
    FOOD_MENU_CLICKS = "food_menu_clicks"
    FOLLOWERS = "followers"
    FOLLOWING = "following"
    POSTS = "posts"
    LISTED = "listed"


LEVELS = frozenset({Metric.FOLLOWERS, Metric.FOLLOWING, Metric.POSTS, Metric.LISTED})
"""An account's own figures: a period's value is the last of it, not a sum."""


class RelativeRange(StrEnum):
    """Days counted back from today in the workspace timezone: `last_7_days`,
    `last_30_days` and `last_90_days` end yesterday (today's snapshots are made tonight);
    `month_to_date` and `year_to_date` run to today; `last_month` is the calendar month
    before this one."""

    LAST_7_DAYS = "last_7_days"
    LAST_30_DAYS = "last_30_days"
    LAST_90_DAYS = "last_90_days"
    MONTH_TO_DATE = "month_to_date"
    LAST_MONTH = "last_month"
    YEAR_TO_DATE = "year_to_date"


class Granularity(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


class Comparison(StrEnum):
    """`previous_period`: as many days just before; `previous_year`: the same days a year
    earlier (29 February becomes the 28th)."""

    PREVIOUS_PERIOD = "previous_period"
    PREVIOUS_YEAR = "previous_year"


MAX_DAYS = 1096
"""The longest range, in days (three years)."""


class DayRange(BaseModel):
    """Days given by date, both included, in the workspace timezone."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    first: Day = Field(alias="from", description="The first day.")
    last: Day = Field(alias="to", description="The last day (included).")

    @model_validator(mode="after")
    def _ordered(self) -> DayRange:
        if self.first > self.last:
            raise ValueError("`from` must not be after `to`.")
        if (self.last - self.first).days + 1 > MAX_DAYS:
            raise ValueError(f"A range is at most {MAX_DAYS} days.")
        return self


Metrics = Annotated[
    list[Metric],
    Field(min_length=1, max_length=15, description="The figures shown, at most 15."),
]
_ACCOUNTS = Field(
    default=None,
    min_length=1,
    max_length=100,
    description="Only these accounts; null or left out for every one (of `platforms`).",
)
_PLATFORMS = Field(
    default=None,
    min_length=1,
    max_length=10,
    description="Only accounts on these platforms; null or left out for every platform.",
)
_RANGE = Field(description='A relative range, or days by date (`{"from", "to"}`).')


class AnalyticsQuery(BaseModel):
    """Figures: whose, which, over which days, in which steps, beside which period; what a
    saved view holds but its name, and what an export without a view holds."""

    model_config = ConfigDict(extra="forbid")

    social_account_ids: list[SocialAccountId] | None = _ACCOUNTS
    platforms: list[Platform] | None = _PLATFORMS
    metrics: Metrics
    range: RelativeRange | DayRange = _RANGE
    granularity: Granularity = Field(
        default=Granularity.DAY, description="One point a day, a week (from Monday) or a month."
    )
    comparison: Comparison | None = Field(
        default=None, description="The period to compare with; null for none."
    )


class AnalyticsViewCreate(AnalyticsQuery):
    """A view to save: figures, and the name they are saved under."""

    name: str = Field(
        min_length=1, max_length=200, pattern=NOT_BLANK, description="Unique in the workspace."
    )


class AnalyticsViewUpdate(BaseModel):
    """What changes; fields left out stay. `social_account_ids`, `platforms` and
    `comparison` set to null are removed."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(
        default=None, min_length=1, max_length=200, pattern=NOT_BLANK, description="A new name."
    )
    social_account_ids: list[SocialAccountId] | None = _ACCOUNTS
    platforms: list[Platform] | None = _PLATFORMS
    metrics: Metrics | None = Field(default=None, description="The figures shown, at most 15.")
    range: RelativeRange | DayRange | None = Field(default=None, description=_RANGE.description)
    granularity: Granularity | None = Field(default=None, description="The steps.")
    comparison: Comparison | None = Field(
        default=None, description="The period to compare with; null for none."
    )


class AnalyticsView(BaseModel):
    """A saved view: what to show, read from the daily snapshots."""

    id: ViewId
    name: str = Field(description="Unique in the workspace.")
    social_account_ids: list[SocialAccountId] | None = Field(
        description="Only these accounts; null for every one (of `platforms`)."
    )
    platforms: list[Platform] | None = Field(description="Only these platforms; null for all.")
    metrics: list[Metric] = Field(description="The figures shown.")
    range: RelativeRange | DayRange = _RANGE
    granularity: Granularity = Field(description="One point a day, a week or a month.")
    comparison: Comparison | None = Field(description="The period compared with; null: none.")
    created_at: datetime = Field(description="When it was made.")
    updated_at: datetime = Field(description="When it was last changed.")


class Period(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    first: date = Field(serialization_alias="from", description="The first day.")
    last: date = Field(serialization_alias="to", description="The last day (included).")


class Point(BaseModel):
    period: date = Field(description="The day, or the first day of the week or month.")
    value: float | None = Field(
        description="A post figure's growth in the period (0 when nothing grew); an "
        "account figure's last level in it (null when none was observed)."
    )
    previous: float | None = Field(
        description="The value of the comparison period's point at the same place; null "
        "with no comparison."
    )


class Series(BaseModel):
    metric: Metric = Field(description="The figure.")
    points: list[Point] = Field(description="One per period, in order.")
    total: float | None = Field(
        description="A post figure's growth over the range; an account figure's last level."
    )
    previous_total: float | None = Field(description="The same over the comparison period.")
    delta: float | None = Field(description="`total` less `previous_total`.")
    delta_ratio: float | None = Field(
        description="`delta` as a share of `previous_total`; null when that is 0 or null."
    )


class AnalyticsData(BaseModel):
    """Figures read from the daily snapshots (days in the workspace timezone)."""

    timezone: str = Field(description="The workspace timezone the days are in.")
    range: Period = Field(description="The days shown.")
    granularity: Granularity = Field(description="The steps: a day, a week or a month.")
    comparison: Comparison | None = Field(description="The period compared with, if any.")
    comparison_range: Period | None = Field(description="The days compared with; null for none.")
    social_account_ids: list[SocialAccountId] = Field(description="The accounts counted.")
    series: list[Series] = Field(description="One per metric, in the order asked.")


class Figures(BaseModel):
    observed_at: datetime = Field(description="When the network was asked.")
    figures: dict[str, float] = Field(description="What it reported then, by metric.")


class TargetMetrics(BaseModel):
    """One target's figures: its delivery's latest and every observation."""

    delivery_id: UUID = Field(description="The target's delivery.")
    social_account_id: SocialAccountId
    platform: str = Field(description="The account's platform.")
    status: str = Field(description="The delivery's status.")
    published_at: datetime | None = Field(description="When it was published, if it was.")
    permalink: str | None = Field(description="The post on the network.")
    next_fetch_at: datetime | None = Field(
        description="When its figures are next fetched; null when no more are."
    )
    latest: Figures | None = Field(description="The last observation; null before the first.")
    history: list[Figures] = Field(description="Every observation, the oldest first.")


class PostMetrics(BaseModel):
    post_id: UUID = Field(description="The post.")
    targets: list[TargetMetrics] = Field(description="One per target, in delivery order.")


class TopPostTarget(BaseModel):
    delivery_id: UUID = Field(description="The target's delivery.")
    social_account_id: SocialAccountId
    platform: str = Field(description="The account's platform.")
    permalink: str | None = Field(description="The post on the network.")
    published_at: datetime = Field(description="When it was published.")
    value: float = Field(description="The delivery's latest value of the metric.")
    observed_at: datetime = Field(description="When that value was observed.")


class TopPost(BaseModel):
    post_id: UUID = Field(description="The post.")
    text: str | None = Field(description="The post's text.")
    published_at: datetime = Field(description="When its first target was published.")
    value: float = Field(description="The metric added up over its targets.")
    targets: list[TopPostTarget] = Field(description="Its targets that were measured.")


class TopPosts(BaseModel):
    """The posts published in a range, best first by a metric's latest figures."""

    metric: Metric = Field(description="What they are ranked by.")
    timezone: str = Field(description="The workspace timezone the days are in.")
    range: Period = Field(description="The days their publishing fell on.")
    data: list[TopPost] = Field(description="The posts, best first.")


class Slot(BaseModel):
    weekday: int = Field(ge=1, le=7, description="ISO weekday of publishing: 1 is Monday.")
    hour: int = Field(ge=0, le=23, description="Hour of publishing, in the workspace timezone.")
    posts: int = Field(description="Posts published then that were measured.")
    mean_engagements: float = Field(description="Their mean engagements a week after.")


class History(BaseModel):
    posts: int = Field(description="Posts measured.")
    first_published_at: datetime | None = Field(description="The earliest of them.")
    last_published_at: datetime | None = Field(description="The latest of them.")
    weeks: float = Field(description="Weeks between the earliest and the latest.")
    enough: bool = Field(
        description="Whether they span at least 8 weeks, so that each weekday was tried often."
    )


class BestTimes(BaseModel):
    """When the account's own posts did best, by weekday and hour in the workspace
    timezone: each post's engagements a week after it was published (the last observed
    within 7 days), averaged over the posts published in the same slot."""

    social_account_id: SocialAccountId
    timezone: str = Field(description="The workspace timezone the hours are in.")
    since: datetime = Field(description="Posts published from then on were looked at.")
    history: History = Field(description="What the answer rests on.")
    best: list[Slot] = Field(
        description="Up to 5 slots with at least 2 posts, the highest mean first."
    )
    slots: list[Slot] = Field(description="Every slot with a measured post, by weekday, hour.")


ExportId = Annotated[UUID, Field(description="Identifier of an analytics export.")]


class ExportFormat(StrEnum):
    """`csv`: a row per account, metric and period; `xlsx`: a summary sheet and the same
    rows; `pdf`: a report with a chart per metric and the top posts."""

    CSV = "csv"
    XLSX = "xlsx"
    PDF = "pdf"


class ExportStatus(StrEnum):
    """`queued` until a worker takes it (again, after a failure it retries); `running`;
    `ready` to download; `failed` for good (see `error`); `expired` once its file is gone."""

    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"
    EXPIRED = "expired"


class AnalyticsExportCreate(BaseModel):
    """A saved view's figures or a query's, to export as a file; a relative range is
    resolved to days now, in the workspace timezone."""

    model_config = ConfigDict(extra="forbid")

    format: ExportFormat = Field(description="The file to make.")
    view_id: ViewId | None = Field(default=None, description="A saved view (or `query`).")
    query: AnalyticsQuery | None = Field(default=None, description="Figures, without a view.")
    title: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=NOT_BLANK,
        description="The report's title and the file's name; the view's name by default.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> AnalyticsExportCreate:
        if (self.view_id is None) == (self.query is None):
            raise ValueError("Give `view_id` or `query`, one of them.")
        return self


class AnalyticsExport(BaseModel):
    """An export: what it holds, how far its worker got, and its file while it is kept."""

    id: ExportId
    format: ExportFormat = Field(description="The file made.")
    status: ExportStatus = Field(description="Where it stands.")
    progress: float = Field(ge=0, le=1, description="How far its worker got, from 0 to 1.")
    rows_written: int = Field(description="Rows of figures written so far.")
    title: str = Field(description="The report's title.")
    view_id: ViewId | None = Field(description="The view it was made of; null for a query.")
    social_account_ids: list[SocialAccountId] | None = Field(
        description="Only these accounts; null for every one (of `platforms`)."
    )
    platforms: list[Platform] | None = Field(description="Only these platforms; null for all.")
    metrics: list[Metric] = Field(description="The figures exported.")
    range: Period = Field(description="The days exported, in the workspace timezone.")
    granularity: Granularity = Field(description="One row a day, a week or a month.")
    comparison: Comparison | None = Field(description="The period compared with; null: none.")
    comparison_range: Period | None = Field(description="The days compared with; null for none.")
    attempts: int = Field(description="Times a worker started it.")
    error: str | None = Field(description="Why the last attempt failed; null when none did.")
    file_name: str | None = Field(description="The file's name, once it is ready.")
    size_bytes: int | None = Field(description="The file's size, once it is ready.")
    download_url: str | None = Field(
        description="Where to download the file (with an API key that may export) while it "
        "is ready; null otherwise."
    )
    created_at: datetime = Field(description="When it was asked for.")
    started_at: datetime | None = Field(description="When a worker first took it.")
    finished_at: datetime | None = Field(description="When it became ready or failed.")
    expires_at: datetime | None = Field(description="When its file is deleted.")
