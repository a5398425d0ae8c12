"""The layering of docs/development.md, checked on the source: who may import what, where
SQL files are loaded, and where HTTP is known."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import crier

SRC = Path(crier.__file__).parent
ENTRY_POINTS = {"crier.app", "crier.asgi", "crier.cli", "crier.runtime"}
"""What builds and runs Crier; nothing below imports them."""
HTTP_LAYER = {
    "crier.app",
    "crier.asgi",
    "crier.runtime",
    "crier.auth.dependencies",
    "crier.kit.body",
    "crier.kit.http",
    "crier.kit.pagination",
    "crier.platforms.sandbox.server",
    "crier.platforms.mastodon.emulator",
    "crier.platforms.bluesky.emulator",
    "crier.platforms.x.emulator",
    "crier.platforms.linkedin.emulator",
    "crier.platforms.google_business.emulator",
    "crier.platforms.emulation",
}
"""Modules beside the `endpoints` modules that may know the web framework."""


def modules() -> Iterator[tuple[str, Path]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def imports(path: Path) -> set[str]:
    """Every module `path` imports, at any depth (lazy imports in functions included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_checks_see_the_whole_source() -> None:
    names = {name for name, _ in modules()}
    assert {"crier.kit.db.engine", "crier.scheduler.service", "crier.post.endpoints"} <= names
    assert "crier.scheduler.service" in imports(SRC / "scheduler" / "worker.py")


def test_kit_imports_no_domain() -> None:
    """kit/ is the toolbox every domain uses: it knows only itself and the settings."""
    allowed = ("crier.kit", "crier.config")
    offending = {
        name: sorted(
            i
            for i in imports(path)
            if within(i, "crier") and i != "crier" and not any(within(i, a) for a in allowed)
        )
        for name, path in modules()
        if within(name, "crier.kit")
    }
    assert {name: found for name, found in offending.items() if found} == {}


def test_no_domain_imports_what_builds_and_runs_crier() -> None:
    offending = {
        name: sorted(i for i in imports(path) if any(within(i, e) for e in ENTRY_POINTS))
        for name, path in modules()
        if name not in ENTRY_POINTS
    }
    assert {name: found for name, found in offending.items() if found} == {}


def test_sql_files_are_loaded_only_by_their_own_packages_repository() -> None:
    loaders = set()
    for name, path in modules():
        if any(
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "queries"
            for node in ast.walk(ast.parse(path.read_text()))
        ):
            loaders.add(name)
        borrowed = [
            i
            for i in imports(path)
            if i.endswith(".QUERIES") and not i.startswith(name.rsplit(".", 1)[0] + ".")
        ]
        assert borrowed == [], f"{name} uses another package's queries: {borrowed}"
    assert loaders == {
        "crier.analytics.repository",
        "crier.delivery.repository",
        "crier.post.repository",
        "crier.review.repository",
        "crier.scheduler.repository",
        "crier.webhook.repository",
    }
    for sql in SRC.rglob("*.sql"):
        assert (sql.parent / "repository.py").exists(), sql


def test_only_the_http_layer_knows_the_web_framework() -> None:
    frameworks = ("fastapi", "starlette")
    knowing = {
        name
        for name, path in modules()
        if any(within(i, f) for i in imports(path) for f in frameworks)
    }
    endpoints = {name for name in knowing if name.endswith(".endpoints")}
    assert knowing - endpoints <= HTTP_LAYER, knowing - endpoints - HTTP_LAYER
    assert not any(within(name, "crier.kit") for name in knowing - HTTP_LAYER)
