"""Problem responses everywhere, their explanations, and the OpenAPI description."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx

from crier.kit.errors import PROBLEM_KINDS
from crier.kit.time import is_iana_timezone
from tests.conftest import Tenant, assert_problem


async def test_unknown_route_is_a_404_problem(http: httpx.AsyncClient) -> None:
    assert_problem(await http.get("/v1/nothing-here"), 404, "not-found")


async def test_wrong_method_is_a_405_problem(http: httpx.AsyncClient) -> None:
    response = await http.put("/v1/workspace")
    assert_problem(response, 405, "method-not-allowed")
    assert response.headers["allow"] == "GET, PATCH"


async def test_every_405_allows_every_documented_method_of_its_path(
    http: httpx.AsyncClient,
) -> None:
    schema = (await http.get("/openapi.json")).json()
    for template, operations in schema["paths"].items():
        path = re.sub(r"\{[^}]+\}", "01a23a68-9f24-7697-9b4a-281c2f542942", template)
        documented = sorted(method.upper() for method in operations)
        unused = next(m for m in ("PUT", "PATCH", "DELETE", "POST") if m not in documented)
        response = await http.request(unused, path)
        assert_problem(response, 405, "method-not-allowed")
        assert response.headers["allow"] == ", ".join(documented), template


async def test_malformed_json_is_a_400_problem_saying_where(tenant: Tenant) -> None:
    response = await tenant.http.post(
        "/v1/members",
        content=b"{not json",
        headers={**tenant.auth, "Content-Type": "application/json"},
    )
    problem = assert_problem(response, 400, "bad-request")
    assert "line 1, column 2" in str(problem["detail"])


async def test_every_problem_type_is_explained(http: httpx.AsyncClient) -> None:
    expected = {
        "not-found",
        "validation-error",
        "permission-denied",
        "plan-limit-exceeded",
        "unauthorized",
        "last-owner",
        "slug-taken",
        "member-exists",
        "internal-error",
    }
    assert expected <= set(PROBLEM_KINDS)
    index = await http.get("/problems")
    for slug, kind in PROBLEM_KINDS.items():
        page = await http.get(f"/problems/{slug}")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert kind.title in page.text
        assert f"/problems/{slug}" in page.text
        assert f'href="/problems/{slug}"' in index.text
    assert_problem(await http.get("/problems/no-such-kind"), 404, "not-found")


async def test_docs_are_served_without_a_cdn(http: httpx.AsyncClient) -> None:
    docs = await http.get("/docs")
    assert docs.status_code == 200
    assert "cdn." not in docs.text
    assert (await http.get("/openapi.json")).status_code == 200


def _undescribed(schema: dict[str, Any]) -> list[str]:
    missing = []
    for name, component in schema["components"]["schemas"].items():
        if name in {"HTTPValidationError", "ValidationError"}:
            continue
        for field, spec in component.get("properties", {}).items():
            if "description" not in spec:
                missing.append(f"{name}.{field}")
    return missing


async def test_every_field_in_the_openapi_is_described(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    assert _undescribed(schema) == []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description"), f"{method.upper()} {path} has no description"
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    assert parameter.get("description"), f"{path} ?{parameter['name']}"


PUBLIC = {"/v1/oauth/callback/{platform}"}
"""Where a network sends the browser back: no API key, the OAuth `state` proves it
(tests/social_account/test_oauth.py)."""


async def test_protected_operations_declare_their_problem_responses(
    http: httpx.AsyncClient,
) -> None:
    schema = (await http.get("/openapi.json")).json()
    for path, operations in schema["paths"].items():
        if not path.startswith("/v1/") or path in PUBLIC:
            continue
        for method, operation in operations.items():
            assert "401" in operation["responses"], f"{method.upper()} {path}"
            assert "application/problem+json" in operation["responses"]["401"]["content"]


async def test_validation_responses_are_documented_as_problems(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            response = operation["responses"].get("422")
            if response is not None:
                assert "application/problem+json" in response["content"], (
                    f"{method.upper()} {path} documents 422 as {response['content']}"
                )


async def test_operations_taking_a_body_document_its_400_and_413(http: httpx.AsyncClient) -> None:
    schema = (await http.get("/openapi.json")).json()
    with_body = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" not in operation:
                continue
            with_body += 1
            for status in ("400", "413"):
                response = operation["responses"].get(status)
                assert response is not None, f"{method.upper()} {path} lacks {status}"
                assert "application/problem+json" in response["content"], f"{path} {status}"
    assert with_body >= 10


async def test_parameters_are_never_null_and_timezones_are_the_accepted_ones(
    http: httpx.AsyncClient,
) -> None:
    """A header or query parameter is absent or text; the Timezone component lists exactly
    the zones Crier accepts."""
    schema = (await http.get("/openapi.json")).json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                assert "null" not in json.dumps(parameter["schema"]), (method, path, parameter)
    zones = schema["components"]["schemas"]["Timezone"]["enum"]
    assert "Europe/Paris" in zones
    assert "localtime" not in zones
    assert "Factory" not in zones
    assert all(is_iana_timezone(zone) for zone in zones)
    update = schema["components"]["schemas"]["WorkspaceUpdate"]["properties"]["timezone"]
    assert {"$ref": "#/components/schemas/Timezone"} in update["anyOf"]


async def test_creates_that_take_an_idempotency_key_document_it_and_its_409(
    http: httpx.AsyncClient,
) -> None:
    schema = (await http.get("/openapi.json")).json()
    creates = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            names = {p["name"]: p for p in operation.get("parameters", [])}
            if "Idempotency-Key" not in names:
                continue
            creates += 1
            assert names["Idempotency-Key"]["schema"]["pattern"] == "^[ -~]{1,255}$"
            assert "409" in operation["responses"], f"{method.upper()} {path}"
    assert creates == 7


async def test_cursors_are_described_as_they_are_read(tenant: Tenant) -> None:
    well_formed = "AZI6OoAAcAAAAAAAAAAAAA"  # 22 base64url characters: any such is a cursor
    assert (await tenant.get("/v1/posts", params={"cursor": well_formed})).status_code == 200
    assert (await tenant.get("/v1/posts", params={"cursor": ""})).status_code == 200  # first page
    for garbage in ("0" * 64, "not a cursor", "AZI6OoAAcAAAAAAAAAAAA="):
        response = await tenant.get("/v1/posts", params={"cursor": garbage})
        body = assert_problem(response, 422, "validation-error")
        assert body["errors"][0]["loc"] == ["query", "cursor"]  # type: ignore[index]
