"""The `crier` command, run as an operator runs it, against the test database."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import httpx
import pytest
from sqlalchemy import select

from crier.analytics import schedule
from crier.analytics.repository import observe
from crier.cli import with_demo_analytics
from crier.config import Settings
from crier.kit.db import Database, DatabaseUrls
from crier.models import AnalyticsSnapshot
from tests.conftest import MakeTenant, assert_problem
from tests.post.conftest import sandbox_account
from tests.servers import free_port

CRIER = [sys.executable, "-m", "crier.cli"]


@pytest.fixture
def cli_env(db_urls: DatabaseUrls, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRIER_")}
    env.update(db_urls.environment())
    env["CRIER_DATA_DIR"] = str(tmp_path)
    return env


def crier(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own command
        [*CRIER, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["serve"],
        ["run"],
        ["worker"],
        ["sandbox"],
        ["emulator"],
        ["migrate"],
        ["dbshell"],
        ["workspace", "create"],
        ["api-key", "create"],
        ["analytics", "rebuild"],
        ["analytics", "demo"],
    ],
)
def test_help_explains_each_command(command: list[str]) -> None:
    result = subprocess.run(  # noqa: S603
        [*CRIER, *command, "--help"], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout
    assert len(result.stdout) > 200


async def test_workspace_create_prints_a_working_owner_key(
    cli_env: dict[str, str], http: httpx.AsyncClient
) -> None:
    result = crier(
        cli_env,
        "workspace",
        "create",
        "--name",
        "Acme Corp",
        "--timezone",
        "Europe/Paris",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    created = json.loads(result.stdout)
    key = created["api_key"]["key"]
    response = await http.get("/v1/workspace", headers={"Authorization": f"Bearer {key}"})
    assert response.status_code == 200
    assert response.json()["id"] == created["workspace"]["id"]
    assert response.json()["timezone"] == "Europe/Paris"
    assert response.json()["slug"].startswith("acme-corp")

    text = crier(cli_env, "workspace", "create", "--name", "Plain")
    assert text.returncode == 0, text.stderr
    assert "crier_sk_" in text.stdout
    assert "shown once" in text.stdout


async def test_a_second_workspace_cannot_reach_the_firsts_ids(
    cli_env: dict[str, str], http: httpx.AsyncClient
) -> None:
    first = json.loads(crier(cli_env, "workspace", "create", "--name", "One", "--json").stdout)
    second = json.loads(crier(cli_env, "workspace", "create", "--name", "Two", "--json").stdout)
    auth = {"Authorization": f"Bearer {second['api_key']['key']}"}
    member = first["owner"]["member_id"]
    assert_problem(await http.get(f"/v1/members/{member}", headers=auth), 404, "not-found")
    key = first["api_key"]["id"]
    assert_problem(await http.delete(f"/v1/api-keys/{key}", headers=auth), 404, "not-found")


async def test_api_key_create_issues_a_scoped_key_by_slug_and_email(
    cli_env: dict[str, str], http: httpx.AsyncClient
) -> None:
    created = json.loads(
        crier(
            cli_env,
            "workspace",
            "create",
            "--name",
            "Keys",
            "--json",
            "--owner-email",
            "boss@keys.example",
        ).stdout
    )
    slug = created["workspace"]["slug"]
    result = crier(
        cli_env,
        "api-key",
        "create",
        "--workspace",
        slug,
        "--member",
        "Boss@Keys.example",
        "--scope",
        "workspace:read",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    issued = json.loads(result.stdout)
    assert issued["member_id"] == created["owner"]["member_id"]
    auth = {"Authorization": f"Bearer {issued['key']}"}
    assert (await http.get("/v1/workspace", headers=auth)).status_code == 200
    assert_problem(await http.get("/v1/members", headers=auth), 403, "permission-denied")


def test_operator_mistakes_are_clear_errors(cli_env: dict[str, str]) -> None:
    bad_zone = crier(cli_env, "workspace", "create", "--name", "X", "--timezone", "Moon/Base")
    assert bad_zone.returncode == 1
    assert "not an IANA timezone" in bad_zone.stderr
    missing = crier(cli_env, "api-key", "create", "--workspace", "no-such-workspace")
    assert missing.returncode == 1
    assert "No workspace" in missing.stderr
    bad_scope = crier(cli_env, "api-key", "create", "--workspace", "x", "--scope", "root")
    assert bad_scope.returncode == 1
    assert "workspace:read" in bad_scope.stderr


def test_the_mastodon_emulator_runs_as_a_command(cli_env: dict[str, str]) -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [*CRIER, "emulator", "mastodon", "--port", str(port)],
        env=cli_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            for _ in range(100):  # bounded: the process needs a moment to listen
                try:
                    answer = client.get("/api/v2/instance")
                    break
                except httpx.ConnectError:
                    time.sleep(0.1)
            else:
                raise AssertionError("the emulator did not start")
            assert answer.status_code == 200
            assert answer.json()["configuration"]["statuses"]["max_characters"] == 500
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_x_emulator_prints_settings_that_connect_an_account(
    cli_env: dict[str, str],
) -> None:
    """`crier emulator x` registers an app for this server's callback and prints the
    settings to run Crier with; with them, a consent and a token exchange go through."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [*CRIER, "emulator", "x", "--port", str(port)],
        env=cli_env | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed, callback = printed_settings(process, "CRIER_X_")
        assert printed["CRIER_X_API_URL"] == f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=printed["CRIER_X_API_URL"]) as client:
            wait_for(client, "/2/users/me")
            query = {
                "response_type": "code",
                "client_id": printed["CRIER_X_CLIENT_ID"],
                "redirect_uri": callback,
                "scope": "tweet.read users.read offline.access",
                "state": "s",
                "code_challenge": "plain-verifier-of-43-characters-aaaaaaaaaaa",
                "code_challenge_method": "plain",
            }
            page = client.get(printed["CRIER_X_AUTHORIZE_URL"], params=query)
            assert page.status_code == 200, page.text
            approved = client.post(
                "/i/oauth2/authorize", data=query | {"username": "amy", "decision": "approve"}
            )
            code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
            token = client.post(
                "/2/oauth2/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": callback,
                    "code_verifier": query["code_challenge"],
                },
                auth=(printed["CRIER_X_CLIENT_ID"], printed["CRIER_X_CLIENT_SECRET"]),
            )
            assert token.status_code == 200, token.text
            assert "refresh_token" in token.json()
    finally:
        process.terminate()
        process.wait(timeout=10)


def printed_settings(process: subprocess.Popen[str], prefix: str) -> tuple[dict[str, str], str]:
    """The settings an emulator printed (`NAME=value` lines), and its app's redirect URI."""
    assert process.stdout is not None
    printed: dict[str, str] = {}
    for _ in range(20):  # bounded: the settings come first, a line each
        line = process.stdout.readline().strip()
        if line.startswith(prefix):
            name, _, value = line.partition("=")
            printed[name] = value
        if line.startswith("(the app's redirect URI is"):
            break
    return printed, line.removeprefix("(the app's redirect URI is ").removesuffix(")")


def wait_for(client: httpx.Client, path: str) -> None:
    for _ in range(100):  # bounded: the process needs a moment to listen
        try:
            client.get(path)
            return
        except httpx.ConnectError:
            time.sleep(0.1)
    raise AssertionError("the emulator did not start")


def test_the_linkedin_emulator_prints_settings_that_connect_a_members_page(
    cli_env: dict[str, str],
) -> None:
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [*CRIER, "emulator", "linkedin", "--port", str(port)],
        env=cli_env | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed, callback = printed_settings(process, "CRIER_LINKEDIN_")
        assert callback.endswith("/v1/oauth/callback/linkedin")
        with httpx.Client(base_url=printed["CRIER_LINKEDIN_API_URL"]) as client:
            wait_for(client, "/v2/userinfo")
            query = {
                "response_type": "code",
                "client_id": printed["CRIER_LINKEDIN_CLIENT_ID"],
                "redirect_uri": callback,
                "scope": "w_organization_social r_organization_social r_organization_admin",
                "state": "s",
            }
            oauth = printed["CRIER_LINKEDIN_OAUTH_URL"]
            assert client.get(f"{oauth}/authorization", params=query).status_code == 200
            approved = client.post(
                f"{oauth}/authorization",
                data=query | {"member": "Ada Lovelace", "decision": "allow"},
            )
            code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
            token = client.post(
                f"{oauth}/accessToken",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": callback,
                    "client_id": printed["CRIER_LINKEDIN_CLIENT_ID"],
                    "client_secret": printed["CRIER_LINKEDIN_CLIENT_SECRET"],
                },
            )
            assert token.status_code == 200, token.text
            headers = {
                "Authorization": f"Bearer {token.json()['access_token']}",
                "LinkedIn-Version": "202611",
                "X-Restli-Protocol-Version": "2.0.0",
            }
            roles = client.get(
                "/rest/organizationAcls", params={"q": "roleAssignee"}, headers=headers
            )
            [role] = roles.json()["elements"]  # the page the demo member administers
            number = role["organization"].rsplit(":", 1)[1]
            page = client.get(f"/rest/organizations/{number}", headers=headers).json()
            assert page["vanityName"] == "analytical-engines"
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_google_emulator_prints_settings_that_reach_two_demo_locations(
    cli_env: dict[str, str],
) -> None:
    """`crier emulator google_business` registers an OAuth client for this server's
    callback, prints the settings to run Crier with, and its demo user manages two
    locations with a review each."""
    port = free_port()
    process = subprocess.Popen(  # noqa: S603 - our own command
        [*CRIER, "emulator", "google_business", "--port", str(port)],
        env=cli_env | {"PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        printed, callback = printed_settings(process, "CRIER_GOOGLE_")
        assert callback.endswith("/v1/oauth/callback/google_business")
        base = printed["CRIER_GOOGLE_BUSINESS_URL"]
        assert base == f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base) as client:
            wait_for(client, "/v1/accounts")
            query = {
                "response_type": "code",
                "client_id": printed["CRIER_GOOGLE_CLIENT_ID"],
                "redirect_uri": callback,
                "scope": "https://www.googleapis.com/auth/business.manage",
                "access_type": "offline",
                "state": "s",
            }
            authorize = printed["CRIER_GOOGLE_AUTHORIZE_URL"]
            assert client.get(authorize, params=query).status_code == 200
            approved = client.post(
                authorize, data=query | {"email": "ada@example.com", "decision": "allow"}
            )
            code = parse_qs(urlsplit(approved.headers["location"]).query)["code"][0]
            token = client.post(
                f"{printed['CRIER_GOOGLE_OAUTH_URL']}/token",
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": callback,
                    "client_id": printed["CRIER_GOOGLE_CLIENT_ID"],
                    "client_secret": printed["CRIER_GOOGLE_CLIENT_SECRET"],
                },
            )
            assert token.status_code == 200, token.text
            assert "refresh_token" in token.json()
            headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
            [account] = client.get("/v1/accounts", headers=headers).json()["accounts"]
            locations = client.get(
                f"/v1/{account['name']}/locations",
                params={"readMask": "name,title"},
                headers=headers,
            ).json()["locations"]
            assert len(locations) == 2
            reviews = client.get(
                f"/v4/{account['name']}/{locations[0]['name']}/reviews", headers=headers
            ).json()
            assert reviews["totalReviewCount"] == 1
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_analytics_rebuild_aggregates_a_workspaces_days_again_and_changes_nothing_twice(
    cli_env: dict[str, str], make_tenant: MakeTenant, db: Database
) -> None:
    tenant = await make_tenant(timezone="Asia/Tokyo")
    account = await sandbox_account(tenant)
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        for hour, followers in ((14, 10.0), (16, 12.0)):  # 23:00 and 01:00 in Tokyo
            at = datetime(2027, 1, 1, hour, tzinfo=UTC)
            await observe(
                session, UUID(tenant.id), UUID(account), None, {"followers": followers}, at
            )
    days = ["--from", "2027-01-01", "--to", "2027-01-02"]
    first = crier(cli_env, "analytics", "rebuild", "--workspace", tenant.slug, *days, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) | {"workspace_id": ""} == {
        "workspace_id": "",
        "timezone": "Asia/Tokyo",
        "from": "2027-01-01",
        "to": "2027-01-02",
        "made": 2,
        "written": 2,
        "removed": 0,
    }
    again = crier(cli_env, "analytics", "rebuild", "--workspace", tenant.id, *days)
    assert again.returncode == 0, again.stderr
    assert "2 snapshots, 0 new or changed, 0 removed" in again.stdout
    async with db.workspace_transaction(UUID(tenant.id)) as session:
        found = await session.scalars(select(AnalyticsSnapshot).order_by(AnalyticsSnapshot.date))
        assert [(s.date.isoformat(), s.value) for s in found] == [
            ("2027-01-01", 10.0),
            ("2027-01-02", 12.0),
        ]
    backwards = crier(
        cli_env,
        "analytics",
        "rebuild",
        "--workspace",
        tenant.id,
        "--from",
        "2027-01-02",
        "--to",
        "2027-01-01",
    )
    assert backwards.returncode != 0
    assert "--from must not be after --to" in backwards.stderr
    unknown = crier(cli_env, "analytics", "rebuild", "--workspace", "no-such-place", *days)
    assert unknown.returncode != 0
    assert "No workspace" in unknown.stderr
    not_a_day = crier(
        cli_env,
        "analytics",
        "rebuild",
        "--workspace",
        tenant.id,
        "--from",
        "2027-13-01",
        "--to",
        "2027-01-01",
    )
    assert not_a_day.returncode == 2


def test_crier_run_measures_the_demo_within_minutes_unless_told_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    demo = with_demo_analytics(Settings())
    assert schedule.parse(demo.metrics_schedule)[0] == timedelta(minutes=2)
    assert (demo.analytics_today_minutes, demo.worker_metrics_poll_seconds) == (1, 10)
    monkeypatch.setenv("CRIER_METRICS_SCHEDULE", "1h,1d")
    kept = with_demo_analytics(Settings())
    assert kept.metrics_schedule == "1h,1d"
    assert kept.analytics_today_minutes == 1


async def test_analytics_demo_gives_a_workspace_a_history_to_look_at(
    cli_env: dict[str, str], make_tenant: MakeTenant, http: httpx.AsyncClient
) -> None:
    tenant = await make_tenant(timezone="America/New_York")
    empty = crier(cli_env, "analytics", "demo", "--workspace", tenant.slug, "--days", "3")
    assert empty.returncode == 1
    assert "no active account" in empty.stderr
    account = await sandbox_account(tenant)
    made = crier(cli_env, "analytics", "demo", "--workspace", tenant.slug, "--days", "60")
    assert made.returncode == 0, made.stderr
    assert "daily snapshots" in made.stdout
    auth = tenant.auth
    views = (await http.get("/v1/analytics/views", headers=auth)).json()["data"]
    assert {v["name"] for v in views} == {
        "Demo: the last 30 days",
        "Demo: the last 90 days by week",
    }
    data = (await http.get(f"/v1/analytics/views/{views[0]['id']}/data", headers=auth)).json()
    impressions, engagements, followers = data["series"]
    assert impressions["total"] > 0
    assert engagements["previous_total"] > 0  # the 30 days before were made too
    assert all(p["value"] is not None for p in followers["points"])
    best = (
        await http.get(
            "/v1/analytics/best-times", params={"social_account_id": account}, headers=auth
        )
    ).json()
    assert best["history"]["enough"] is True
    assert best["best"]
    top = (
        await http.get("/v1/analytics/top-posts", params={"range": "last_30_days"}, headers=auth)
    ).json()
    assert len(top["data"]) == 10
    again = crier(cli_env, "analytics", "demo", "--workspace", tenant.id, "--days", "1")
    assert again.returncode == 0, again.stderr  # adds to it; the views are not made twice
    assert len((await http.get("/v1/analytics/views", headers=auth)).json()["data"]) == 2
    no_demo = crier(cli_env, "analytics", "demo")
    assert no_demo.returncode == 1
    assert "--workspace" in no_demo.stderr
