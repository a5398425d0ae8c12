"""Human explanations of each problem `type`: `/problems/<slug>` resolves."""

from __future__ import annotations

from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from crier.kit.errors import PROBLEM_KINDS, NotFound

router = APIRouter(prefix="/problems", include_in_schema=False)

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title} - Crier</title></head>
<body style="font-family: sans-serif; max-width: 40em; margin: 3em auto; line-height: 1.5">
{body}
</body></html>"""


@router.get("", response_class=HTMLResponse)
async def list_problems() -> HTMLResponse:
    """Every kind of problem the API can answer with."""
    items = "\n".join(
        f'<li><a href="/problems/{k.slug}"><code>{k.slug}</code></a> ({k.status}): '
        f"{escape(k.title)}</li>"
        for k in sorted(PROBLEM_KINDS.values(), key=lambda k: k.slug)
    )
    return HTMLResponse(
        _PAGE.format(
            title="Problem types",
            body=f"<h1>Problem types</h1><p>Every error response of the Crier API is "
            f"<code>application/problem+json</code> (RFC 9457) whose <code>type</code> is one of "
            f"these.</p><ul>{items}</ul>",
        )
    )


@router.get("/{slug}", response_class=HTMLResponse)
async def explain_problem(slug: str) -> HTMLResponse:
    """What one kind of problem means and what to do about it."""
    kind = PROBLEM_KINDS.get(slug)
    if kind is None:
        raise NotFound(f"No problem type '{slug}'. See /problems for all of them.")
    return HTMLResponse(
        _PAGE.format(
            title=escape(kind.title),
            body=f"<h1>{escape(kind.title)}</h1><p><code>type: {escape(kind.type_uri)}</code>, "
            f"HTTP {kind.status}</p><p>{escape(kind.explanation)}</p>"
            f'<p><a href="/problems">All problem types</a></p>',
        )
    )
