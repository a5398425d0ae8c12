"""View data and ad-hoc queries as the API answers them: the API key's look-up and what
the answer rests on (the view, the accounts in scope now, the snapshot generation) in one
round trip, and the answer itself from this process's `Answers` when the snapshots have not
changed since it was made; else read from the snapshots and kept."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID
from zoneinfo import ZoneInfo

from crier.analytics import query, repository, views
from crier.analytics.answers import Answers
from crier.analytics.schemas import Comparison, DayRange, Granularity, Metric, RelativeRange
from crier.auth import repository as key_repository
from crier.auth import service as auth_service
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.db import Database
from crier.kit.errors import NotFound
from crier.kit.time import Clock


@dataclass(frozen=True)
class Figures:
    """What an answer shows: a saved view's or a query's."""

    scope: query.Scope
    metrics: Sequence[Metric]
    range: RelativeRange | DayRange
    granularity: Granularity
    comparison: Comparison | None


async def view_answer(
    db: Database, clock: Clock, secret_hash: bytes, kept: Answers, view_id: UUID
) -> bytes:
    """The saved view's data as JSON, for the caller whose API key hashes to
    `secret_hash`."""
    now = clock.now()
    found, rows = await db.read_at_once(
        key_repository.authenticate_statement(secret_hash, now),
        repository.view_in_context_statement(view_id),
    )
    principal = _reader(found, now)
    if not rows:
        raise NotFound("No saved analytics view with this id in this workspace.")
    view, context = repository.view_in_context(rows[0])
    shown = views.shown(view)
    figures = Figures(
        views.scope_of(view), shown.metrics, shown.range, shown.granularity, shown.comparison
    )
    return await _answer(db, kept, principal, now, figures, context)


async def query_answer(
    db: Database, clock: Clock, secret_hash: bytes, kept: Answers, figures: Figures
) -> bytes:
    """An ad-hoc query's data as JSON, for the caller whose API key hashes to
    `secret_hash`."""
    now = clock.now()
    found, rows = await db.read_at_once(
        key_repository.authenticate_statement(secret_hash, now),
        repository.reading_context_statement(
            figures.scope.social_account_ids, figures.scope.platforms
        ),
    )
    principal = _reader(found, now)
    return await _answer(db, kept, principal, now, figures, repository.context_of(rows[0]))


def _reader(found: list[dict[str, object]], now: datetime) -> Principal:
    principal = auth_service.principal_of(key_repository.authenticated(found), now)
    principal.require(Permission.ANALYTICS_READ)
    return principal


async def _answer(
    db: Database,
    kept: Answers,
    principal: Principal,
    now: datetime,
    figures: Figures,
    context: repository.Context,
) -> bytes:
    """The answer kept under everything it rests on, or else read and kept.

    The snapshots are read after `context` was: what is kept under its generation is then
    as new as that generation or newer, never older."""
    query.checked(figures.scope, context)
    timezone = principal.workspace_timezone
    today = now.astimezone(ZoneInfo(timezone)).date()
    key = (
        principal.workspace_id,
        context.generation,
        timezone,
        query.resolve(figures.range, today),
        tuple(context.in_scope),
        tuple(dict.fromkeys(figures.metrics)),
        figures.granularity,
        figures.comparison,
    )
    body = kept.get(key)
    if body is None:
        async with db.workspace_transaction(principal.workspace_id) as session:
            made = await query.data(
                session,
                timezone,
                today,
                scope=figures.scope,
                metrics=figures.metrics,
                range_=figures.range,
                granularity=figures.granularity,
                comparison=figures.comparison,
                ids=context.in_scope,
            )
        body = made.model_dump_json(by_alias=True).encode()
        kept.put(key, body)
    return body
