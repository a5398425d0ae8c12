"""HTTP plumbing shared by every domain: the request transaction and problem responses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.ext.asyncio import AsyncSession

from crier.kit.db import Database
from crier.kit.errors import PROBLEM_CONTENT_TYPE
from crier.kit.idempotency import REPLAYED_HEADER, Recorded
from crier.kit.time import Clock


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One transaction per request, committed before the response is sent."""
    db: Database = request.app.state.db
    async with db.transaction() as session:
        yield session


# scope="function": the commit happens before the response leaves, so a client never sees a
# success for a change that then failed to commit.
DbSession = Annotated[AsyncSession, Depends(request_session, scope="function")]


async def request_clock(request: Request) -> Clock:

    clock: Clock = request.app.state.clock
    return clock


RequestClock = Annotated[Clock, Depends(request_clock)]


def respond(answer: Recorded) -> Response:
    """The HTTP response of a create's answer, marked when it is a replay."""
    headers = {**answer.headers, REPLAYED_HEADER: "true"} if answer.replayed else answer.headers
    return Response(
        content=answer.body,
        status_code=answer.status,
        headers=headers,
        media_type="application/json",
    )


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="Stable identifier of the kind of problem: `/problems/<slug>`.")
    title: str = Field(description="Short summary of the kind of problem.")
    status: int = Field(description="The HTTP status code.")
    detail: str = Field(description="What went wrong with this request.")
    instance: str | None = Field(default=None, description="The request path.")


_DESCRIPTIONS = {
    401: "Missing, unknown, revoked or expired API key (`unauthorized`).",
    403: "A permission is missing (`permission-denied`) or a plan limit is reached "
    "(`plan-limit-exceeded`).",
    404: "No such resource in this workspace (`not-found`).",
    409: "Conflicts with the current state of the resource.",
    422: "Invalid input (`validation-error`).",
    503: "A platform could not be reached (`platform-unavailable`); nothing changed.",
}


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses=` entries for the problems an endpoint may answer."""
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS.get(status, "Problem"),
            "content": {PROBLEM_CONTENT_TYPE: {}},
        }
        for status in statuses
    }
