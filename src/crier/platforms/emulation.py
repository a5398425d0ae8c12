"""What the networks' emulators share: sending the browser back from a consent page, and
setting the faults a test or demo asks for."""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlencode

from starlette.responses import RedirectResponse, Response


def redirect_back(uri: str, query: dict[str, str | None]) -> Response:
    """A 302 to the client's redirect URI with `query` added (None values left out)."""
    kept = {k: v for k, v in query.items() if v is not None}
    return RedirectResponse(uri + ("&" if "?" in uri else "?") + urlencode(kept), 302)


def set_faults(faults: Any, asked: dict[str, Any]) -> str | None:
    """Set the faults named in `asked` (each converted to its field's type); the first
    name that is not a fault, if any, with nothing set."""
    unknown = next((name for name in asked if not hasattr(faults, name)), None)
    if unknown is not None:
        return unknown
    for name, value in asked.items():
        setattr(faults, name, type(getattr(faults, name))(value))
    return None


def hidden_fields(params: dict[str, str]) -> str:
    """A consent form's hidden inputs, carrying the authorization request's parameters."""
    return "".join(
        f'<input type="hidden" name="{html.escape(k, quote=True)}" '
        f'value="{html.escape(v, quote=True)}">'
        for k, v in params.items()
    )


def refuse_back(uri: str, error: str, description: str, state: str | None) -> Response:
    """The browser sent back to the client with an OAuth error (RFC 6749, 4.1.2.1)."""
    return redirect_back(uri, {"error": error, "error_description": description, "state": state})
