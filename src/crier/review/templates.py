"""Reply templates: text with placeholders filled from the review it answers.

`{reviewer_name}`, `{location_name}` and `{rating}` are replaced by the review's values;
`{reviewer_name|there}` gives the text to use when the review has no such value (a review
may have no reviewer name); `{{` and `}}` are literal braces. Anything else between braces
is refused when the template is saved, so a template never sends a placeholder as text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

PLACEHOLDERS = ("reviewer_name", "location_name", "rating")

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}|]*)(?:\|([^{}]*))?\}|[{}]")


class TemplateError(ValueError):
    """What is wrong with a template's text (the message says where)."""


def check(text: str) -> None:
    """Raise `TemplateError` unless every brace in `text` is a known placeholder or an
    escaped brace."""
    for found in _TOKEN.finditer(text):
        token = found.group(0)
        if token in ("{{", "}}"):
            continue
        if token in ("{", "}"):
            raise TemplateError(
                f"A lone {token!r} at character {found.start() + 1}: write {token * 2} for a "
                "brace, or close the placeholder."
            )
        name = found.group(1)
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise TemplateError(f"Unknown placeholder {token} (the placeholders are {known}).")


def render(text: str, values: Mapping[str, str | None]) -> str:
    """`text` with its placeholders filled from `values` (a missing value gives the
    placeholder's fallback, or nothing). `text` must pass `check`."""

    def fill(found: re.Match[str]) -> str:
        token = found.group(0)
        if token in ("{{", "}}"):
            return token[0]
        value = values.get(found.group(1))
        return value if value else (found.group(2) or "")

    return _TOKEN.sub(fill, text)
