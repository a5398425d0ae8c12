"""The decaying schedule of a post's metric fetches, and how it is set."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from crier.analytics import schedule
from crier.analytics.names import with_engagements
from crier.config import Settings

SINCE = datetime(2026, 3, 8, 6, 30, tzinfo=UTC)


def test_the_default_is_one_hour_six_hours_a_day_three_days_a_week_and_a_month() -> None:
    assert schedule.parse("1h,6h,24h,3d,7d,30d") == schedule.DEFAULT
    assert Settings().metrics_schedule == "1h,6h,24h,3d,7d,30d"
    assert schedule.parse(" 90m , 2d ") == (timedelta(minutes=90), timedelta(days=2))


@pytest.mark.parametrize("text", ["", "1h,,2h", "6h,1h", "1h,1h", "0m", "1w", "1.5h", "h"])
def test_a_schedule_that_is_not_increasing_steps_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="step"):
        schedule.parse(text)
    with pytest.raises(ValidationError, match="metrics_schedule"):
        Settings(metrics_schedule=text)


@pytest.mark.parametrize(
    ("after", "stage", "due"),
    [
        (timedelta(0), 0, timedelta(hours=1)),
        (timedelta(minutes=59), 0, timedelta(hours=1)),
        (timedelta(hours=1), 1, timedelta(hours=6)),  # fetched at its time: the next one
        (timedelta(days=4), 4, timedelta(days=7)),  # late: the steps it passed are passed
        (timedelta(days=30), 6, None),
        (timedelta(days=400), 6, None),
    ],
)
def test_the_next_step_is_the_first_still_ahead(
    after: timedelta, stage: int, due: timedelta | None
) -> None:
    assert schedule.next_step(SINCE, schedule.DEFAULT, SINCE + after) == (
        stage,
        None if due is None else SINCE + due,
    )


def test_engagements_are_the_networks_own_or_the_sum_of_interactions() -> None:
    assert (
        with_engagements({"likes": 2, "comments": 1, "shares": 3, "quotes": 1})["engagements"] == 7
    )
    assert with_engagements({"likes": 2, "engagements": 40})["engagements"] == 40
    assert with_engagements({"impressions": 10}) == {"impressions": 10}
