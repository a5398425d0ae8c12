"""Hand-written SQL, kept in `.sql` files beside the code that runs it.

A file holds named blocks:

    -- name: claim_due_posts
    -- What the query does, for the reader.
    UPDATE ...

`queries(__file__, "queries.sql")` loads them once; each is a SQLAlchemy `text()` run with
bound parameters (`:name`), never with values formatted in.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, TextClause, any_, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import QueryableAttribute

_NAME = re.compile(r"^--\s*name:\s*([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)


def queries(beside: str, filename: str) -> dict[str, TextClause]:
    """The named blocks of `filename`, found next to the module file `beside`."""
    source = (Path(beside).parent / filename).read_text()
    parts = _NAME.split(source)
    found: dict[str, TextClause] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in found:
            raise ValueError(f"{filename}: the query {name!r} is defined twice")
        found[name] = text(body.strip())
    if not found:
        raise ValueError(f"{filename} holds no '-- name:' block")
    return found


def any_of(
    column: ColumnElement[Any] | QueryableAttribute[Any], values: Iterable[Any]
) -> ColumnElement[bool]:
    """`column = ANY(:values)`, one array parameter: the same statement text (so one prepared
    statement) however many values, where `IN (...)` renders a new text for every count."""
    return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
