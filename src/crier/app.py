"""The HTTP API: routers, problem responses and the objects requests share."""

from __future__ import annotations

import gc
import logging
import re
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi_offline import FastAPIOffline
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import BaseRoute, compile_path

from crier import __version__
from crier.analytics.answers import DEFAULT_BUDGET, Answers
from crier.analytics.endpoints import posts_router as analytics_posts_router
from crier.analytics.endpoints import router as analytics_router
from crier.auth.endpoints import router as auth_router
from crier.kit.body import BodyLimit, MalformedBody, PayloadTooLarge
from crier.kit.concurrency import missing_if_match
from crier.kit.db import Database
from crier.kit.errors import (
    PROBLEM_CONTENT_TYPE,
    PROBLEM_KINDS,
    CrierError,
    MethodNotAllowed,
    NotFound,
    field_error,
    problem_body,
    register_problem,
)
from crier.kit.outbound import Guard
from crier.kit.storage import Storage
from crier.kit.time import EXPECTED_FORM, TIMEZONE_COMPONENT, Clock, SystemClock, timezone_schema
from crier.kit.vault import Vault
from crier.media.endpoints import router as media_router
from crier.member.endpoints import router as member_router
from crier.platforms.registry import Platforms
from crier.post.endpoints import router as post_router
from crier.problems.endpoints import router as problems_router
from crier.review.endpoints import alerts_router as review_alerts_router
from crier.review.endpoints import router as review_router
from crier.review.endpoints import templates_router as review_templates_router
from crier.social_account.endpoints import oauth_router, platforms_router
from crier.social_account.endpoints import router as social_account_router
from crier.webhook.endpoints import router as webhook_router
from crier.workspace.endpoints import router as workspace_router

log = logging.getLogger(__name__)

DESCRIPTION = """
Crier schedules and publishes social-media posts for many accounts on many networks,
on time, exactly once, in the right timezone.

Authenticate with an API key: `Authorization: Bearer crier_sk_...`. Every error is an
RFC 9457 problem (`application/problem+json`) whose `type` is `/problems/<slug>`; the
server explains each at that path.
"""

NAIVE_TIMESTAMP = register_problem(
    "naive-timestamp",
    "Timestamp without offset",
    422,
    f"""Crier accepts only ISO 8601 timestamps with an explicit UTC offset, such as
    {EXPECTED_FORM}. A timestamp without one is ambiguous (whose noon?), so it is refused
    rather than guessed. `errors` lists the fields; `expected_form` shows the form.""",
)

_BY_STATUS = {
    400: PROBLEM_KINDS[MalformedBody.slug],
    413: PROBLEM_KINDS[PayloadTooLarge.slug],
}


def create_app(
    db: Database,
    vault: Vault,
    storage: Storage,
    spool_dir: Path,
    platforms: Platforms,
    clock: Clock | None = None,
    webhook_guard: Guard | None = None,
    base_url: str = "http://127.0.0.1:8000",
    redirect_origins: frozenset[str] | None = None,
    analytics_answers: int = DEFAULT_BUDGET,
) -> FastAPI:
    """Build the API around an open database, a media storage and the platform adapters."""
    app = FastAPIOffline(
        title="Crier API",
        version=__version__,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url="/redoc",
    )
    app.add_middleware(BodyLimit)
    app.state.db = db
    app.state.vault = vault
    app.state.clock = clock or SystemClock()
    app.state.storage = storage
    app.state.spool_dir = spool_dir
    app.state.platforms = platforms
    app.state.webhook_guard = webhook_guard or Guard()
    app.state.base_url = base_url.rstrip("/")
    app.state.redirect_origins = redirect_origins or frozenset({app.state.base_url})
    app.state.analytics_answers = Answers(analytics_answers)

    included = [
        *(
            ("/v1", router)
            for router in (
                workspace_router,
                member_router,
                auth_router,
                social_account_router,
                oauth_router,
                platforms_router,
                media_router,
                post_router,
                review_router,
                review_templates_router,
                review_alerts_router,
                analytics_router,
                analytics_posts_router,
                webhook_router,
            )
        ),
        ("", problems_router),
    ]
    for prefix, router in included:
        app.include_router(router, prefix=prefix)

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        """Prometheus metrics of this process (the scheduler's too when it runs here)."""
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz", include_in_schema=False)
    async def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/readyz", include_in_schema=False)
    async def ready() -> dict[str, str]:
        """The process can reach its database (one round trip reading one row)."""
        async with db.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        return {"status": "ready"}

    app.state.methods_by_path = _methods_by_path(
        [(prefix, route) for prefix, router in included for route in router.routes]
        + [("", route) for route in app.router.routes]
    )
    _install_problem_handlers(app)
    _refine_openapi(app)
    return app


def _refine_openapi(app: FastAPI) -> None:
    """FastAPI's description, made exact: the `Timezone` component that timezone fields
    refer to, and parameters without the `null` that an optional Python parameter adds (a
    header or query parameter is absent or a string, never JSON null)."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components[TIMEZONE_COMPONENT] = timezone_schema()
            for operations in schema["paths"].values():
                for operation in operations.values():
                    for parameter in operation.get("parameters", []):
                        _drop_null(parameter["schema"])
        return app.openapi_schema or {}

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_null(schema: dict[str, Any]) -> None:
    options = schema.get("anyOf")
    if options is None:
        return
    kept = [option for option in options if option != {"type": "null"}]
    if len(kept) == 1 and len(kept) < len(options):
        del schema["anyOf"]
        schema.update(kept[0])


def _methods_by_path(routes: list[tuple[str, BaseRoute]]) -> list[tuple[re.Pattern[str], str]]:
    """For each path the app serves, the `Allow` header of a 405 there: every method of
    every route of that path (Starlette's own names only those of the first route it found,
    though GET and PATCH of one path are separate routes)."""
    methods: dict[str, set[str]] = {}
    for prefix, route in routes:
        path, route_methods = getattr(route, "path", None), getattr(route, "methods", None)
        if path and route_methods:
            methods.setdefault(prefix + path, set()).update(route_methods)
    return [(compile_path(path)[0], ", ".join(sorted(m))) for path, m in methods.items()]


def _allowed_methods(request: Request) -> str:
    path = request.scope["path"]
    table: list[tuple[re.Pattern[str], str]] = request.app.state.methods_by_path
    return next((allow for regex, allow in table if regex.match(path)), "")


def freeze_startup_objects() -> None:
    """Leave what start-up built (the app, its routes, models and schemas; a worker's
    runtime) out of garbage collection from now on. It lives as long as the process, and
    scanning it in every full collection stalled the requests in flight for tens of
    milliseconds, and a worker's posts falling due for over a hundred."""
    gc.freeze()


def problem_response(
    request: Request, body: dict[str, Any], headers: dict[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        body, status_code=body["status"], headers=headers, media_type=PROBLEM_CONTENT_TYPE
    )


def _is_missing_if_match(error: Any) -> bool:
    """A change that must name the version it read came without `If-Match`: the routes
    declare the header required, so that their description says so, and this is 428."""
    loc = tuple(error.get("loc", ()))
    return error.get("type") == "missing" and loc == ("header", "If-Match")


def _install_problem_handlers(app: FastAPI) -> None:
    @app.exception_handler(CrierError)
    async def crier_error(request: Request, exc: CrierError) -> JSONResponse:
        return problem_response(request, exc.to_problem(request.url.path), dict(exc.headers))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        if any(_is_missing_if_match(e) for e in exc.errors()):
            return problem_response(request, missing_if_match().to_problem(request.url.path))
        errors = [
            field_error(list(e.get("loc", ())), str(e.get("msg", "")), str(e.get("type", "")))
            for e in exc.errors()
        ]
        summary = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['message']}" for e in errors[:3]
        )
        if any(e["type"] == "naive_timestamp" for e in errors):
            body = problem_body(
                NAIVE_TIMESTAMP.slug,
                NAIVE_TIMESTAMP.title,
                422,
                f"Timestamps need an explicit UTC offset: {summary}.",
                request.url.path,
                {"errors": errors, "expected_form": EXPECTED_FORM},
            )
        else:
            body = problem_body(
                "validation-error",
                "Validation error",
                422,
                f"The request is not valid: {summary}.",
                request.url.path,
                {"errors": errors},
            )
        return problem_response(request, body)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            error: CrierError = NotFound(f"Nothing at {request.url.path}.")
            return problem_response(request, error.to_problem(request.url.path))
        if exc.status_code == 405:
            allowed = _allowed_methods(request) or dict(exc.headers or {}).get("Allow", "")
            error = MethodNotAllowed(
                f"{request.method} is not allowed on {request.url.path}; it allows {allowed}."
            )
            return problem_response(request, error.to_problem(request.url.path), {"Allow": allowed})
        kind = _BY_STATUS.get(exc.status_code)
        slug, title = (kind.slug, kind.title) if kind else ("internal-error", "Internal error")
        body = problem_body(slug, title, exc.status_code, str(exc.detail), request.url.path)
        return problem_response(request, body, dict(exc.headers or {}))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        body = problem_body(
            "internal-error",
            "Internal error",
            500,
            "Something failed inside Crier; the request changed nothing.",
            request.url.path,
        )
        return problem_response(request, body)
