"""Analytics exports: CSV streamed from a view or a query, and CSV, XLSX and PDF files
written by the workers, with their progress, download, events, failures, expiry,
permissions and other workspaces."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from pypdf import PdfReader

from crier.analytics import exports, repository
from crier.analytics.query import Scope
from crier.analytics.schemas import Granularity
from crier.kit.db import Database
from crier.kit.storage import LocalStorage
from crier.scheduler.worker import Worker
from tests.analytics.test_endpoints import snap
from tests.conftest import FakeClock, MakeTenant, Tenant, assert_problem
from tests.post.conftest import sandbox_account
from tests.review.conftest import events_of
from tests.scheduler.test_metric_collection import published

PARIS = ZoneInfo("Europe/Paris")
TODAY = date(2027, 3, 15)  # a Monday
LAST_WEEK = [TODAY - timedelta(days=n) for n in range(7, 0, -1)]  # 8 to 14 March


@pytest.fixture
async def paris(make_tenant: MakeTenant, clock: FakeClock) -> Tenant:
    clock.set(datetime.combine(TODAY, time(9, 30), PARIS))
    return await make_tenant(timezone="Europe/Paris")


async def two_accounts(paris: Tenant, db: Database) -> tuple[str, str]:
    """Two accounts with a week of likes and followers, and likes the week before."""
    one = await sandbox_account(paris, handle="one", display_name="=SUM(A1)")
    two = await sandbox_account(paris, handle="two", display_name="Two")
    for n, day in enumerate(LAST_WEEK):
        await snap(db, paris, one, "likes", day, 10 + n)
        await snap(db, paris, two, "likes", day, 1)
        await snap(db, paris, one, "followers", day, 100 + n)
        await snap(db, paris, one, "likes", day - timedelta(days=7), 5)
    await snap(db, paris, one, "likes", TODAY, 1_000)  # today: outside last_7_days
    return one, two


def day_of(cell: object) -> date:
    """A spreadsheet's date cell, as a day."""
    assert isinstance(cell, datetime), cell
    return cell.date()


def rows_of(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


async def a_view(paris: Tenant, **fields: Any) -> dict[str, Any]:
    body = {
        "name": "Weekly report",
        "metrics": ["likes", "followers"],
        "range": "last_7_days",
        "comparison": "previous_period",
    } | fields
    made = await paris.post("/v1/analytics/views", json=body)
    assert made.status_code == 201, made.text
    view: dict[str, Any] = made.json()
    return view


async def test_a_views_csv_has_a_row_per_account_metric_and_day_beside_the_previous(
    paris: Tenant, db: Database
) -> None:
    one, two = await two_accounts(paris, db)
    view = await a_view(paris)
    got = await paris.get(f"/v1/analytics/views/{view['id']}/data.csv")
    assert got.status_code == 200, got.text
    assert got.headers["content-type"] == "text/csv; charset=utf-8"
    assert got.headers["content-disposition"] == (
        'attachment; filename="weekly-report-2027-03-08-2027-03-14.csv"'
    )
    assert got.text.splitlines()[0] == (
        "period,social_account_id,platform,handle,account,metric,value,previous_period,"
        "previous_value"
    )
    rows = rows_of(got.text)
    assert len(rows) == 7 * 3  # likes of both, followers of one; nothing of today
    ids = [UUID(r["social_account_id"]) for r in rows]
    assert ids == sorted(ids)  # account by account
    assert {str(i) for i in ids} == {one, two}
    likes = [r for r in rows if r["social_account_id"] == one and r["metric"] == "likes"]
    assert [r["period"] for r in likes] == [d.isoformat() for d in LAST_WEEK]
    assert [r["value"] for r in likes] == [str(10 + n) for n in range(7)]
    assert [r["previous_period"] for r in likes] == [
        (d - timedelta(days=7)).isoformat() for d in LAST_WEEK
    ]
    assert {r["previous_value"] for r in likes} == {"5"}
    assert {r["account"] for r in likes} == {"'=SUM(A1)"}  # never a formula
    assert {(r["platform"], r["handle"]) for r in likes} == {("sandbox", "one")}
    followers = [r for r in rows if r["metric"] == "followers"]
    assert [r["value"] for r in followers] == [str(100 + n) for n in range(7)]
    assert {r["previous_value"] for r in followers} == {""}
    # The rows add up to what the view's data shows.
    data = (await paris.get(f"/v1/analytics/views/{view['id']}/data")).json()
    for series in data["series"]:
        for point in series["points"]:
            found = [
                float(r["value"])
                for r in rows
                if r["metric"] == series["metric"] and r["period"] == point["period"]
            ]
            assert sum(found) == point["value"], (series["metric"], point)


async def test_a_querys_csv_by_week_sums_post_figures_and_keeps_the_last_level(
    paris: Tenant, db: Database
) -> None:
    one, _ = await two_accounts(paris, db)
    got = await paris.get(
        "/v1/analytics/query.csv",
        params={
            "metric": ["likes", "followers"],
            "from": "2027-03-01",
            "to": "2027-03-14",
            "granularity": "week",
            "social_account_id": one,
        },
    )
    assert got.status_code == 200, got.text
    assert got.headers["content-disposition"] == (
        'attachment; filename="analytics-2027-03-01-2027-03-14.csv"'
    )
    assert (
        got.text.splitlines()[0] == "period,social_account_id,platform,handle,account,metric,value"
    )
    rows = [(r["metric"], r["period"], r["value"]) for r in rows_of(got.text)]
    assert sorted(rows) == sorted(
        [
            ("followers", "2027-03-08", "106"),
            ("likes", "2027-03-01", "35"),
            ("likes", "2027-03-08", str(sum(range(10, 17)))),
        ]
    )


async def test_a_csv_says_what_is_wrong_before_it_streams(
    paris: Tenant, other_tenant: Tenant
) -> None:
    for params, status, kind in (
        ({"metric": "likes"}, 422, "validation-error"),
        ({"metric": "likez", "range": "last_7_days"}, 422, "validation-error"),
        ({"metric": "likes", "from": "2027-02-01", "to": "2027-01-01"}, 422, "validation-error"),
        (
            {"metric": "likes", "range": "last_7_days", "social_account_id": str(uuid4())},
            404,
            "not-found",
        ),
    ):
        assert_problem(await paris.get("/v1/analytics/query.csv", params=params), status, kind)
    theirs = await sandbox_account(other_tenant)
    assert_problem(
        await paris.get(
            "/v1/analytics/query.csv",
            params={"metric": "likes", "range": "last_7_days", "social_account_id": theirs},
        ),
        404,
        "not-found",
    )
    view = await a_view(paris)
    assert_problem(
        await other_tenant.get(f"/v1/analytics/views/{view['id']}/data.csv"), 404, "not-found"
    )


async def test_exports_need_the_analytics_export_permission(paris: Tenant) -> None:
    view = await a_view(paris)
    viewer = await paris.member_with_key("viewer")
    assert (await viewer.get(f"/v1/analytics/views/{view['id']}/data")).status_code == 200
    for method, path in (
        ("GET", f"/v1/analytics/views/{view['id']}/data.csv"),
        ("GET", "/v1/analytics/query.csv?metric=likes&range=last_7_days"),
        ("POST", "/v1/analytics/exports"),
        ("GET", "/v1/analytics/exports"),
        ("GET", f"/v1/analytics/exports/{uuid4()}"),
        ("GET", f"/v1/analytics/exports/{uuid4()}/file"),
        ("DELETE", f"/v1/analytics/exports/{uuid4()}"),
    ):
        denied = assert_problem(
            await viewer.http.request(
                method, path, headers=viewer.auth, json={"format": "csv", "view_id": view["id"]}
            ),
            403,
            "permission-denied",
        )
        assert denied["permission"] == "analytics:export"
    editor = await paris.member_with_key("editor")
    assert (await editor.get(f"/v1/analytics/views/{view['id']}/data.csv")).status_code == 200


async def ask(tenant: Tenant, **body: Any) -> dict[str, Any]:
    made = await tenant.post("/v1/analytics/exports", json=body)
    assert made.status_code == 202, made.text
    assert made.headers["Location"] == f"/v1/analytics/exports/{made.json()['id']}"
    export: dict[str, Any] = made.json()
    return export


async def written(worker: Worker, tenant: Tenant, export: dict[str, Any]) -> dict[str, Any]:
    """The export once a worker wrote it."""
    assert await worker.exports.run(UUID(tenant.id), UUID(export["id"])) is True
    found: dict[str, Any] = (await tenant.get(f"/v1/analytics/exports/{export['id']}")).json()
    return found


async def test_a_csv_export_is_queued_written_by_a_worker_and_downloaded(
    paris: Tenant, db: Database, worker: Worker, clock: FakeClock
) -> None:
    await two_accounts(paris, db)
    view = await a_view(paris)
    export = await ask(paris, format="csv", view_id=view["id"])
    assert export | {"id": "", "created_at": ""} == {
        "id": "",
        "format": "csv",
        "status": "queued",
        "progress": 0.0,
        "rows_written": 0,
        "title": "Weekly report",
        "view_id": view["id"],
        "social_account_ids": None,
        "platforms": None,
        "metrics": ["likes", "followers"],
        "range": {"from": "2027-03-08", "to": "2027-03-14"},
        "granularity": "day",
        "comparison": "previous_period",
        "comparison_range": {"from": "2027-03-01", "to": "2027-03-07"},
        "attempts": 0,
        "error": None,
        "file_name": None,
        "size_bytes": None,
        "download_url": None,
        "created_at": "",
        "started_at": None,
        "finished_at": None,
        "expires_at": None,
    }
    waiting = assert_problem(
        await paris.get(f"/v1/analytics/exports/{export['id']}/file"),
        409,
        "analytics-export-not-ready",
    )
    assert waiting["export_status"] == "queued"
    clock.advance(timedelta(seconds=3))
    done = await written(worker, paris, export)
    assert done["status"] == "ready", done
    assert (done["progress"], done["rows_written"], done["attempts"]) == (1.0, 21, 1)
    assert done["file_name"] == "weekly-report-2027-03-08-2027-03-14.csv"
    assert done["download_url"] == f"/v1/analytics/exports/{export['id']}/file"
    assert datetime.fromisoformat(done["finished_at"]) == clock.now()
    expires = datetime.fromisoformat(done["expires_at"])
    assert expires == clock.now() + timedelta(days=7)
    file = await paris.get(done["download_url"])
    assert file.status_code == 200
    assert file.headers["content-type"].startswith("text/csv")
    assert (
        'filename="weekly-report-2027-03-08-2027-03-14.csv"'
        in (file.headers["content-disposition"])
    )
    assert len(file.content) == done["size_bytes"]
    streamed = await paris.get(f"/v1/analytics/views/{view['id']}/data.csv")
    assert file.text == streamed.text
    [event] = await events_of(db, paris, "analytics.export.ready")
    assert event == done
    # Written once: a second run finds nothing waiting.
    assert await worker.exports.run(UUID(paris.id), UUID(export["id"])) is False
    listed = (await paris.get("/v1/analytics/exports")).json()["data"]
    assert [e["id"] for e in listed] == [export["id"]]


async def test_the_same_idempotency_key_asks_for_one_export(paris: Tenant) -> None:
    view = await a_view(paris)
    headers = paris.auth | {"Idempotency-Key": f"export-{uuid4()}"}
    body = {"format": "pdf", "view_id": view["id"]}
    first = await paris.http.post("/v1/analytics/exports", json=body, headers=headers)
    again = await paris.http.post("/v1/analytics/exports", json=body, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert len((await paris.get("/v1/analytics/exports")).json()["data"]) == 1


async def test_an_xlsx_export_has_a_summary_sheet_and_the_rows_per_account(
    paris: Tenant, db: Database, worker: Worker, storage: LocalStorage
) -> None:
    one, two = await two_accounts(paris, db)
    export = await ask(
        paris,
        format="xlsx",
        title="Q1 in Paris",
        query={
            "metrics": ["likes", "followers"],
            "range": "last_7_days",
            "comparison": "previous_period",
        },
    )
    done = await written(worker, paris, export)
    assert done["status"] == "ready", done
    assert done["file_name"] == "q1-in-paris-2027-03-08-2027-03-14.xlsx"
    file = await paris.get(done["download_url"])
    assert file.headers["content-type"] == (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    )
    book = openpyxl.load_workbook(io.BytesIO(file.content), read_only=True)
    assert book.sheetnames == ["Summary", "By account"]
    summary = [list(r) for r in book["Summary"].iter_rows(values_only=True)]
    assert summary[0][0] == "Q1 in Paris"
    assert "days in Europe/Paris" in str(summary[1][0])
    header = summary.index(
        ["period", "likes", "likes (previous)", "followers", "followers (previous)"]
    )
    days = summary[header + 1 : header + 8]
    assert [day_of(r[0]) for r in days] == LAST_WEEK
    assert [r[1] for r in days] == [11 + n for n in range(7)]
    assert [r[2] for r in days] == [5] * 7
    assert [r[3] for r in days] == [100 + n for n in range(7)]
    assert summary[header + 8][:3] == ["total", sum(range(11, 18)), 35]
    rows = list(book["By account"].iter_rows(values_only=True))
    assert rows[0][:7] == (
        "period",
        "social_account_id",
        "platform",
        "handle",
        "account",
        "metric",
        "value",
    )
    assert len(rows) == 1 + 21
    mine = [r for r in rows[1:] if r[1] == one and r[5] == "likes"]
    assert [(day_of(r[0]), r[6], r[8]) for r in mine] == [
        (d, 10 + n, 5) for n, d in enumerate(LAST_WEEK)
    ]
    assert {r[4] for r in mine} == {"=SUM(A1)"}  # a string cell, not a formula
    assert {r[1] for r in rows[1:]} == {one, two}


async def test_a_pdf_report_has_a_chart_per_metric_and_the_top_posts(
    paris: Tenant, db: Database, worker: Worker, clock: FakeClock
) -> None:
    one, _ = await two_accounts(paris, db)
    clock.set(datetime.combine(LAST_WEEK[2], time(12, 0), PARIS))
    delivery = await published(paris, worker, clock, one)
    async with db.workspace_transaction(UUID(paris.id)) as session:
        await repository.observe(
            session,
            UUID(paris.id),
            UUID(one),
            UUID(delivery["id"]),
            {"likes": 42},
            clock.now() + timedelta(hours=1),
        )
    clock.set(datetime.combine(TODAY, time(9, 30), PARIS))
    view = await a_view(paris)
    export = await ask(paris, format="pdf", view_id=view["id"])
    done = await written(worker, paris, export)
    assert done["status"] == "ready", done
    file = await paris.get(done["download_url"])
    assert file.headers["content-type"] == "application/pdf"
    assert file.content.startswith(b"%PDF-")
    pdf = PdfReader(io.BytesIO(file.content))
    text = "\n".join(page.extract_text() for page in pdf.pages)
    assert pdf.metadata is not None
    assert pdf.metadata.title == "Weekly report"
    for expected in (
        "Weekly report",
        "08 Mar 2027 to 14 Mar 2027, by day, days in Europe/Paris",
        "Compared with 01 Mar 2027 to 07 Mar 2027",
        "Likes",
        f"Total {sum(range(11, 18))}; compared period 35; change +{sum(range(11, 18)) - 35}",
        "Followers",
        "Top posts by Likes",
        "Hello",
        "2027-03-10 12:01",  # published a minute after it was asked to be
        "42",
    ):
        assert expected in text, (expected, text)
    # Each chart is drawn: its lines are paths on the page, its labels the days.
    assert "10 Mar" in text
    drawn = b"".join(page.get_contents().get_data() for page in pdf.pages)  # type: ignore[union-attr]
    assert drawn.count(b" l\n") + drawn.count(b" l ") > 14  # 2 x 6 segments at least


async def test_an_export_that_cannot_be_stored_is_retried_then_fails_with_an_event(
    paris: Tenant, db: Database, worker: Worker, clock: FakeClock, storage: LocalStorage
) -> None:
    view = await a_view(paris)
    export = await ask(paris, format="csv", view_id=view["id"])
    # A file where the workspace's export folder would go: storage cannot write there.
    blocker = storage.root / "exports" / paris.id
    blocker.parent.mkdir(parents=True, exist_ok=True)
    blocker.write_text("not a folder")
    try:
        for attempt in range(1, exports.EXPORT_ATTEMPTS + 1):
            assert await worker.exports.run(UUID(paris.id), UUID(export["id"])) is False
            found = (await paris.get(f"/v1/analytics/exports/{export['id']}")).json()
            assert found["attempts"] == attempt
            assert found["error"] == "The export's file could not be written (storage failed)."
            if attempt < exports.EXPORT_ATTEMPTS:
                assert found["status"] == "queued"
                # Not again before its time.
                assert await worker.exports.run(UUID(paris.id), UUID(export["id"])) is False
                assert (await paris.get(f"/v1/analytics/exports/{export['id']}")).json()[
                    "attempts"
                ] == attempt
                clock.advance(exports.RETRY_AFTER * attempt)
        assert found["status"] == "failed"
        assert found["finished_at"] is not None
        [event] = await events_of(db, paris, "analytics.export.failed")
        assert event == found
        assert await events_of(db, paris, "analytics.export.ready") == []
        failed = assert_problem(
            await paris.get(f"/v1/analytics/exports/{export['id']}/file"),
            409,
            "analytics-export-not-ready",
        )
        assert failed["export_status"] == "failed"
        assert "storage failed" in str(failed["detail"])
    finally:
        blocker.unlink()


async def test_a_ready_export_expires_and_a_deleted_one_takes_its_file(
    paris: Tenant, db: Database, worker: Worker, clock: FakeClock, storage: LocalStorage
) -> None:
    view = await a_view(paris)
    kept = await written(worker, paris, await ask(paris, format="csv", view_id=view["id"]))
    gone = await written(worker, paris, await ask(paris, format="pdf", view_id=view["id"]))
    kept_file = storage.root / "exports" / paris.id / kept["id"] / kept["file_name"]
    gone_file = storage.root / "exports" / paris.id / gone["id"] / gone["file_name"]
    assert kept_file.is_file()
    assert gone_file.is_file()

    assert (await paris.delete(f"/v1/analytics/exports/{gone['id']}")).status_code == 204
    assert not gone_file.exists()
    assert_problem(await paris.get(f"/v1/analytics/exports/{gone['id']}"), 404, "not-found")
    assert_problem(await paris.delete(f"/v1/analytics/exports/{gone['id']}"), 404, "not-found")

    clock.advance(timedelta(days=7) - timedelta(seconds=1))
    await worker.exports.expire()
    assert kept_file.is_file()
    clock.advance(timedelta(seconds=1))
    assert await worker.exports.expire() >= 1
    assert not kept_file.exists()
    expired = (await paris.get(f"/v1/analytics/exports/{kept['id']}")).json()
    assert (expired["status"], expired["download_url"], expired["file_name"]) == (
        "expired",
        None,
        None,
    )
    assert_problem(
        await paris.get(f"/v1/analytics/exports/{kept['id']}/file"), 410, "analytics-export-expired"
    )


async def test_an_export_deleted_while_written_stops_and_leaves_no_file(
    paris: Tenant, db: Database, worker: Worker, clock: FakeClock, storage: LocalStorage
) -> None:
    await two_accounts(paris, db)
    view = await a_view(paris)
    export = await ask(paris, format="csv", view_id=view["id"])
    now = clock.now()
    async with db.workspace_transaction(UUID(paris.id)) as session:  # a worker took it
        assert await repository.take_export(
            session, UUID(export["id"]), worker.id, now, now + exports.EXPORT_LEASE
        )
    assert await worker.exports.run(UUID(paris.id), UUID(export["id"])) is False  # held
    running = (await paris.get(f"/v1/analytics/exports/{export['id']}")).json()
    assert running["status"] == "running"
    assert (await paris.delete(f"/v1/analytics/exports/{export['id']}")).status_code == 204
    async with db.workspace_transaction(UUID(paris.id)) as session:
        assert not await repository.export_progress(
            session, UUID(export["id"]), worker.id, 0.5, 10, now, now + exports.EXPORT_LEASE
        )
    assert not (storage.root / "exports" / paris.id / export["id"]).exists()


async def test_a_worker_whose_lease_ran_out_loses_the_export_to_another(
    paris: Tenant, db: Database, worker: Worker, clock: FakeClock
) -> None:
    view = await a_view(paris)
    export = await ask(paris, format="csv", view_id=view["id"])
    now = clock.now()
    async with db.workspace_transaction(UUID(paris.id)) as session:  # another worker, then dead
        assert await repository.take_export(
            session, UUID(export["id"]), "dead-worker", now, now + exports.EXPORT_LEASE
        )
    assert await worker.exports.run(UUID(paris.id), UUID(export["id"])) is False
    clock.advance(exports.EXPORT_LEASE)
    done = await written(worker, paris, export)
    assert (done["status"], done["attempts"]) == ("ready", 2)
    async with db.workspace_transaction(UUID(paris.id)) as session:  # the dead one is fenced
        assert not await repository.export_progress(
            session, UUID(export["id"]), "dead-worker", 0.5, 1, now, now + exports.EXPORT_LEASE
        )


@pytest.mark.parametrize(
    "body",
    [
        {"format": "csv"},
        {
            "format": "csv",
            "view_id": str(uuid4()),
            "query": {"metrics": ["likes"], "range": "last_7_days"},
        },
        {"format": "docx", "query": {"metrics": ["likes"], "range": "last_7_days"}},
        {"format": "csv", "query": {"metrics": [], "range": "last_7_days"}},
        {"format": "csv", "query": {"metrics": ["likes"], "range": "last_8_days"}},
        {
            "format": "csv",
            "query": {"metrics": ["likes"], "range": {"from": "2027-02-01", "to": "2027-01-01"}},
        },
        {"format": "csv", "query": {"metrics": ["likes"], "range": "last_7_days", "name": "x"}},
        {"format": "csv", "title": " ", "query": {"metrics": ["likes"], "range": "last_7_days"}},
        {"format": "csv", "query": {"metrics": ["likes"], "range": "last_7_days"}, "colour": "red"},
    ],
)
async def test_an_export_that_is_not_well_formed_is_refused(
    paris: Tenant, body: dict[str, Any]
) -> None:
    assert_problem(await paris.post("/v1/analytics/exports", json=body), 422, "validation-error")
    assert (await paris.get("/v1/analytics/exports")).json()["data"] == []


async def test_another_workspaces_views_accounts_and_exports_answer_404(
    paris: Tenant, other_tenant: Tenant, worker: Worker
) -> None:
    view = await a_view(paris)
    mine = await written(worker, paris, await ask(paris, format="csv", view_id=view["id"]))
    theirs = await sandbox_account(other_tenant)
    assert_problem(
        await other_tenant.post(
            "/v1/analytics/exports", json={"format": "csv", "view_id": view["id"]}
        ),
        404,
        "not-found",
    )
    assert_problem(
        await paris.post(
            "/v1/analytics/exports",
            json={
                "format": "csv",
                "query": {
                    "metrics": ["likes"],
                    "range": "last_7_days",
                    "social_account_ids": [theirs],
                },
            },
        ),
        404,
        "not-found",
    )
    for path in (f"/v1/analytics/exports/{mine['id']}", mine["download_url"]):
        assert_problem(await other_tenant.get(path), 404, "not-found")
    assert_problem(
        await other_tenant.delete(f"/v1/analytics/exports/{mine['id']}"), 404, "not-found"
    )
    assert (await other_tenant.get("/v1/analytics/exports")).json()["data"] == []
    assert (await paris.get(mine["download_url"])).status_code == 200


def test_file_names_keep_letters_digits_and_dashes() -> None:
    spec = exports.Spec(
        title="Été / Q1: <b>",
        timezone="UTC",
        scope=Scope(),
        metrics=(),
        first=date(2027, 1, 1),
        last=date(2027, 3, 31),
        granularity=Granularity.DAY,
        comparison=None,
    )
    assert exports.file_name(spec, "pdf") == "t-q1-b-2027-01-01-2027-03-31.pdf"
    assert exports.file_name(spec.__class__(**{**spec.__dict__, "title": "***"}), "csv") == (
        "analytics-2027-01-01-2027-03-31.csv"
    )
    assert Path(exports.file_name(spec, "csv")).name == exports.file_name(spec, "csv")
