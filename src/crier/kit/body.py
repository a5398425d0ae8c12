"""Request bodies: how large they may be, and the one reading of JSON every endpoint shares.

Every JSON body is read here before any endpoint sees it, and refused whole if PostgreSQL
could not store what it holds: text must be valid Unicode without the NUL character (neither
`text` nor `jsonb` can hold U+0000 or half of a surrogate pair), numbers must be finite
(`NaN` and `Infinity` are not JSON, though Python's parser accepts them), and nesting is
bounded. One check for every field of every body, so that no field can be forgotten.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crier.kit.errors import PROBLEM_CONTENT_TYPE, CrierError, ValidationFailed, field_error

MiB = 1024 * 1024
JSON_BODY_LIMIT = 1 * MiB
"""The largest request body Crier reads, in bytes, but for media uploads (the plan's size)."""


class PayloadTooLarge(CrierError):
    """The request body is larger than this endpoint accepts: 1 MiB for JSON bodies. A media
    upload may be as large as the workspace's plan allows (`media-too-large` past that).
    `limit_bytes` says how large this one may be."""

    slug = "payload-too-large"
    title = "Payload too large"
    status = 413


@dataclass
class _Budget:
    limit: int
    received: int = 0


_BUDGET = "crier.body_budget"


class BodyLimit:
    """ASGI middleware: a request body past its limit (`JSON_BODY_LIMIT` unless its endpoint
    raised it with `allow_body`) raises `PayloadTooLarge` where the body is read, whether
    the client declared its length or sends it in chunks. Nothing past the limit is read."""

    def __init__(self, app: ASGIApp, limit: int = JSON_BODY_LIMIT) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        budget = scope[_BUDGET] = _Budget(self.limit)
        declared = Headers(scope=scope).get("content-length", "")

        async def counted() -> Message:
            if declared.isdigit() and int(declared) > budget.limit:
                raise _too_large(budget)
            message = await receive()
            if message["type"] == "http.request":
                budget.received += len(message.get("body", b""))
                if budget.received > budget.limit:
                    raise _too_large(budget)
            return message

        await self.app(scope, counted, send)


def _too_large(budget: _Budget) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The body is larger than the {budget.limit} bytes this endpoint accepts.",
        limit_bytes=budget.limit,
    )


def allow_body(request: Request, limit: int) -> None:
    """Let this request's body be up to `limit` bytes, before it is read."""
    request.scope[_BUDGET].limit = limit


MAX_DEPTH = 32
"""How deeply arrays and objects may nest in a body."""


class MalformedBody(CrierError):
    """The request body could not be read as JSON: it is not UTF-8, not JSON (`NaN` and
    `Infinity` are not JSON numbers), or nested deeper than Crier reads. `detail` says
    where."""

    slug = "bad-request"
    title = "Bad request"
    status = 400


def _not_json(constant: str) -> float:
    raise ValueError(f"{constant} is not a JSON number")


def read_json(raw: bytes) -> Any:
    """The JSON value of a request body, refused unless every part of it can be stored."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise MalformedBody(f"The body is not UTF-8: invalid byte at offset {exc.start}.") from None
    try:
        value = json.loads(text, parse_constant=_not_json)
    except json.JSONDecodeError as exc:
        raise MalformedBody(
            f"The body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}."
        ) from None
    except ValueError as exc:  # from _not_json
        raise MalformedBody(f"The body is not JSON: {exc}.") from None
    except RecursionError:
        raise MalformedBody(f"The body nests deeper than {MAX_DEPTH} levels.") from None
    _check_storable(value)
    return value


def text_problem(text: str) -> str | None:
    """Why PostgreSQL could not store `text`, or None if it can."""
    if "\x00" in text:
        return "text may not contain the NUL character (U+0000)"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "text may not contain an unpaired surrogate (not valid Unicode)"
    return None


def _check_storable(value: Any) -> None:
    """Raise `ValidationFailed` listing every string, key, number or depth that cannot be
    stored, each at its location in the body."""
    errors: list[dict[str, Any]] = []
    pending: list[tuple[Any, list[str | int]]] = [(value, ["body"])]
    while pending:
        item, loc = pending.pop()
        if len(loc) - 1 > MAX_DEPTH:
            errors.append(field_error(loc, f"nested deeper than {MAX_DEPTH} levels", "too_deep"))
            continue
        if isinstance(item, str):
            if problem := text_problem(item):
                errors.append(field_error(loc, problem, "unstorable_text"))
        elif isinstance(item, float) and not math.isfinite(item):  # 1e999 parses as inf
            errors.append(field_error(loc, "numbers must be finite", "finite_number"))
        elif isinstance(item, dict):
            for key, member in item.items():
                if problem := text_problem(key):
                    errors.append(field_error(loc, f"a key's {problem}", "unstorable_text"))
                    continue
                pending.append((member, [*loc, key]))
        elif isinstance(item, list):
            pending.extend((member, [*loc, i]) for i, member in enumerate(item))
    if errors:
        errors.sort(key=lambda e: [str(part) for part in e["loc"]])
        raise ValidationFailed(
            f"The body holds {len(errors)} value(s) Crier cannot store; see errors.", errors
        )


class _JsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_crier_json"):
            self._crier_json = read_json(await self.body())
        return self._crier_json


def _is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


# Documented on every operation that takes a body; `Problem` is among the components
# because every operation documents its 401 with it.
_BODY_PROBLEMS: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }
    for status, description in (
        (400, "The body is not UTF-8 or not JSON, or nests too deeply (`bad-request`)."),
        (413, "The body is larger than this operation accepts (`payload-too-large`)."),
    )
}


class JsonRoute(APIRoute):
    """A route whose JSON body is read with `read_json` before FastAPI parses it, so its
    problems reach the client as they are (FastAPI turns errors raised inside its own body
    parsing into a bare 400). Its description lists the 400 and 413 that reading answers."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        if self.body_field is not None or "requestBody" in (self.openapi_extra or {}):
            self.responses = {**_BODY_PROBLEMS, **self.responses}

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def handle_json(request: Request) -> Response:
            request = _JsonRequest(request.scope, request.receive)
            if _is_json(request) and await request.body():
                await request.json()
            return await handle(request)

        return handle_json
