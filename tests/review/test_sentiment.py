"""Sentiment: how a review is scored, its measured agreement with star ratings (the figures
`docs/reviews.md` states), and scoring on ingest."""

from __future__ import annotations

import csv
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path
from uuid import UUID

import pytest

from crier.review.sentiment import Sentiment, label_of, rating_label, score
from crier.review.tasks import ReviewSyncer
from tests.conftest import FakeClock
from tests.review.conftest import Location, whole_feed

LABELLED = Path(__file__).with_name("labelled_reviews.csv")
DOCS = Path(__file__).parents[2] / "docs" / "reviews.md"
LABELS = ("negative", "neutral", "positive")


def labelled() -> list[tuple[int, str, str]]:
    with LABELLED.open(encoding="utf-8", newline="") as f:
        return [(int(r["rating"]), r["language"], r["text"]) for r in csv.DictReader(f)]


def documented(pattern: str) -> tuple[int, ...]:
    found = re.search(pattern, DOCS.read_text(encoding="utf-8"))
    assert found is not None, f"docs/reviews.md no longer says {pattern!r}"
    return tuple(int(g) for g in found.groups())


def test_the_labelled_set_is_as_documented() -> None:
    rows = labelled()
    english = [rating for rating, language, _ in rows if language == "en"]
    others = {language for _, language, text in rows if text and language != "en"}
    assert len(rows) >= 200
    assert documented(r"on the labelled set\s+`tests/review/labelled_reviews.csv`: (\d+)") == (
        len(rows),
    )
    assert documented(r"(\d+) in English \((\d+) to (\d+) for each number of stars\)") == (
        len(english),
        min(Counter(english).values()),
        max(Counter(english).values()),
    )
    assert documented(r"(\d+) in seven other languages") == (
        sum(1 for _, language, text in rows if text and language != "en"),
    )
    assert others == {"es", "fr", "de", "it", "pt", "nl", "ja"}
    assert documented(r"and (\d+) with a rating\s+alone") == (
        sum(1 for _, _, text in rows if not text),
    )


def test_agreement_with_star_ratings_is_what_the_docs_state() -> None:
    confusion: Counter[tuple[str, str]] = Counter()
    sources: Counter[str] = Counter()
    text_agree = told = wrong = with_text = 0
    for rating, language, text in labelled():
        found = score(text, rating)
        expected = rating_label(rating)
        confusion[expected, found.label] += 1
        sources[found.source] += 1
        text_agree += found.source == "text" and found.label == expected
        if text:
            with_text += 1
            told += found.language is not None
            wrong += found.language not in (None, language)
    total = sum(confusion.values())
    agree = sum(confusion[label, label] for label in LABELS)
    assert documented(r"Agreement with the stars: \*\*(\d+) of (\d+) reviews \((\d+)\.(\d)%\)") == (
        agree,
        total,
        *divmod(int(1000 * agree / total + 0.5), 10),
    )
    assert documented(
        r"Scored from their text: \*\*(\d+) reviews\*\*, of which \*\*(\d+) agree "
        r"\((\d+)\.(\d)%\)\*\*; the other (\d+)"
    ) == (
        sources["text"],
        text_agree,
        *divmod(int(1000 * text_agree / sources["text"] + 0.5), 10),
        sources["rating"],
    )
    assert documented(r"Language told for \*\*(\d+) of the (\d+) reviews with text\*\*") == (
        told,
        with_text,
    )
    assert wrong == 0  # "and never a wrong one"
    for stars, label in (("1-2", "negative"), ("3", "neutral"), ("4-5", "positive")):
        row = rf"\| {label} \({stars} stars?\) \| (\d+) \| (\d+) \| (\d+) \|"
        assert documented(row) == tuple(confusion[label, got] for got in LABELS), label
    # Whatever the docs say, the method must stay clearly better than chance on what it
    # reads, and good on the reviews that are not mixed.
    assert text_agree / sources["text"] >= 0.75
    for label, floor in (("negative", 0.85), ("positive", 0.9)):
        assert confusion[label, label] / sum(confusion[label, got] for got in LABELS) >= floor


@pytest.mark.parametrize(
    ("text", "rating", "expected"),
    [
        # English that carries sentiment is scored from the text, whatever the stars say.
        ("Terrible. Just terrible.", 5, ("negative", "text")),
        ("The staff were lovely and the coffee was great", 1, ("positive", "text")),
        ("The coffee was not good at all.", 4, ("negative", "text")),
        # No text, or only whitespace: the stars.
        (None, 2, ("negative", "rating")),
        ("   \n", 4, ("positive", "rating")),
        # English without a word that carries sentiment: the stars.
        ("We came on a Tuesday evening and ordered the set menu.", 3, ("neutral", "rating")),
        # Another language: the stars, with the language told.
        ("El servicio fue terrible, nunca vuelvo a este sitio.", 5, ("positive", "rating")),
    ],
)
def test_a_review_is_scored_from_its_text_or_its_stars(
    text: str | None, rating: int, expected: tuple[str, str]
) -> None:
    found = score(text, rating)
    assert (found.label, found.source) == expected
    assert -1 <= found.score <= 1
    assert found.label == label_of(found.score)


def test_the_language_is_stored_only_when_the_model_is_sure() -> None:
    assert score("El servicio fue terrible, nunca vuelvo a este sitio.", 1).language == "es"
    assert score("Sehr gutes Essen und freundliches Personal.", 5).language == "de"
    assert score("The staff were lovely and the coffee was great", 5).language == "en"
    short = score("Meh.", 3)
    assert short.language is None
    assert short.source == "text"  # the model's best guess still picks how it is scored
    assert score(None, 3).language is None


def test_stars_give_evenly_spaced_scores() -> None:
    assert [score(None, stars) for stars in range(1, 6)] == [
        Sentiment(value, label, "rating", None)  # type: ignore[arg-type]
        for value, label in (
            (-1.0, "negative"),
            (-0.5, "negative"),
            (0.0, "neutral"),
            (0.5, "positive"),
            (1.0, "positive"),
        )
    ]


async def test_synced_reviews_are_scored_and_rescored_when_their_text_or_rating_changes(
    location: Location, syncer: ReviewSyncer, clock: FakeClock
) -> None:
    rude = await location.review(1, "Rude staff and a dirty table. I will not come back.")
    stars = await location.review(5, None)
    spanish = await location.review(2, "La habitación estaba sucia y el personal fue antipático.")
    account = UUID(location.account_id)
    assert await syncer.sync(location.workspace, account)

    async def scored() -> dict[str | None, tuple[object, ...]]:
        reviews = (await whole_feed(location.tenant))[0]
        return {
            str(r["external_id"]): (
                r["sentiment_label"],
                r["sentiment_source"],
                r["language"],
                r["sentiment"],
            )
            for r in reviews
        }

    first = await scored()
    assert first[rude][:3] == ("negative", "text", "en")
    rude_score = first[rude][3]
    assert isinstance(rude_score, float)
    assert rude_score < -0.5
    assert first[stars] == ("positive", "rating", None, 1.0)
    assert first[spanish] == ("negative", "rating", "es", -0.5)

    await location.edit(rude, comment="Lovely staff, spotless tables. We will be back!")
    await location.edit(stars, rating=3)
    await location.edit(spanish, reply="Lo sentimos mucho.")  # not the review's own words
    clock.advance(timedelta(minutes=15))
    assert await syncer.sync(location.workspace, account)
    second = await scored()
    assert second[rude][:3] == ("positive", "text", "en")
    assert second[stars] == ("neutral", "rating", None, 0.0)
    assert second[spanish] == first[spanish]


async def test_the_feed_filters_by_sentiment_label(
    location: Location, syncer: ReviewSyncer
) -> None:
    await location.review(5, "Wonderful service, the staff went out of their way to help us.")
    await location.review(4, "Terrible. Just terrible.")  # the text says what it says
    await location.review(3, None)
    await syncer.sync(location.workspace, UUID(location.account_id))

    async def bodies(label: str) -> list[object]:
        return [r["body"] for r in (await whole_feed(location.tenant, sentiment=label))[0]]

    assert await bodies("positive") == [
        "Wonderful service, the staff went out of their way to help us."
    ]
    assert await bodies("negative") == ["Terrible. Just terrible."]
    assert await bodies("neutral") == [None]
