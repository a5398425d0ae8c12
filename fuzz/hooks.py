"""What schemathesis checks and sends beyond its own rules (loaded through SCHEMATHESIS_HOOKS).

- Every error answer is an RFC 9457 problem: `application/problem+json`, with `type`,
  `title` and a `status` equal to the HTTP status.
- A revoked API key and a disconnected account stay readable after their DELETE, showing
  `revoked_at` / `disconnected_at` (docs/api.md): that read is not a use after free.
- Each generated `Idempotency-Key` is made unique. A key names one request (docs/api.md):
  the fuzzer's habit of sending `0` as the key of many different requests would only test
  `idempotency-key-reused`, and replays of a first answer would look like data loss to its
  stateful checks. Replay itself has its own tests.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import schemathesis

PROBLEM = "application/problem+json"
KEY_HEADER = "idempotency-key"
_VALID_KEY = re.compile(r"^[ -~]{1,200}$")  # room for the suffix within 255


@schemathesis.check
def errors_are_problems(ctx: Any, response: Any, case: Any) -> bool | None:
    """A 4xx or 5xx answer is a problem document saying the same status."""
    if response.status_code < 400:
        return None
    content_type = response.headers.get("content-type", [""])
    kind = (content_type[0] if isinstance(content_type, list) else content_type).split(";")[0]
    if kind.strip() != PROBLEM:
        raise AssertionError(f"{response.status_code} answered as {kind!r}, not {PROBLEM}")
    body = response.json()
    if not isinstance(body, dict) or not {"type", "title", "status"} <= set(body):
        raise AssertionError(f"the problem lacks type, title or status: {body!r}")
    if body["status"] != response.status_code or not str(body["type"]).startswith("/problems/"):
        raise AssertionError(f"the problem does not match its answer: {body!r}")
    return True


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: dict[str, Any]) -> None:
    # Only valid requests: editing a header of a deliberately invalid one would make
    # schemathesis judge it afresh, and send headers the invalid case left out.
    if case.meta is not None and case.meta.generation.mode.is_negative:
        return
    for name, value in list((case.headers or {}).items()):
        if name.lower() == KEY_HEADER and isinstance(value, str) and _VALID_KEY.match(value):
            case.headers[name] = f"{value.split('~')[0]}~{uuid.uuid4().hex}"


# Records that DELETE ends but keeps, and the field that says so.
_KEPT_AFTER_DELETE = {
    "/v1/api-keys/{key_id}": "revoked_at",
    "/v1/social-accounts/{account_id}": "disconnected_at",
}


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    ended = _KEPT_AFTER_DELETE.get(case.operation.path)
    if ended is None or type(failure).__name__ != "UseAfterFree":
        return True
    body = response.json()
    return not (isinstance(body, dict) and body.get(ended))
