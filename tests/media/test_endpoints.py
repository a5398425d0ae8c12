"""Media: uploads judged by content, crops, downloads, limits, and nothing left behind."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import httpx
import pytest
from PIL import Image

from crier.kit.storage import LocalStorage
from tests.conftest import MakeTenant, Tenant, assert_problem
from tests.media.conftest import image_bytes, mp4_bytes

RATIOS = {"square": 1.0, "portrait": 0.8, "landscape": 1.91, "vertical": 9 / 16}


async def upload(
    tenant: Tenant,
    data: bytes,
    name: str = "file.bin",
    content_type: str = "application/octet-stream",
) -> httpx.Response:
    return await tenant.post("/v1/media", files={"file": (name, data, content_type)})


def files_under(storage: LocalStorage, tenant: Tenant) -> list[Path]:
    folder = storage.root / tenant.id
    return [p for p in folder.rglob("*") if p.is_file()] if folder.exists() else []


async def test_an_image_is_stored_with_its_crops(tenant: Tenant, storage: LocalStorage) -> None:
    data = image_bytes("PNG", (1600, 900))
    response = await upload(tenant, data, "banner.png", "image/png")
    assert response.status_code == 201, response.text
    asset = response.json()
    assert (asset["category"], asset["content_type"]) == ("image", "image/png")
    assert (asset["width"], asset["height"]) == (1600, 900)
    assert asset["sha256"] == hashlib.sha256(data).hexdigest()
    assert asset["usage_count"] == 0
    assert asset["filename"] == "banner.png"
    assert asset["storage_path"].startswith(f"{tenant.id}/{asset['id']}/")
    assert {v["name"] for v in asset["variants"]} == {*RATIOS, "thumbnail"}
    for variant in asset["variants"]:
        if variant["name"] in RATIOS:
            assert variant["width"] / variant["height"] == pytest.approx(
                RATIOS[variant["name"]], rel=0.01
            )
        else:
            assert max(variant["width"], variant["height"]) <= 320
        fetched = await tenant.get(variant["url"])
        assert fetched.status_code == 200
        with Image.open(io.BytesIO(fetched.content)) as image:
            assert image.size == (variant["width"], variant["height"])
    original = await tenant.get(asset["url"])
    assert original.content == data
    assert original.headers["content-type"] == "image/png"
    schema = (await tenant.http.get("/openapi.json")).json()
    served = schema["paths"]["/v1/media/{media_id}/file"]["get"]["responses"]["200"]["content"]
    assert {"image/png", "image/jpeg"} <= set(served)  # the original's type and the variants'
    assert len(files_under(storage, tenant)) == 6
    assert (await tenant.get(f"/v1/media/{asset['id']}")).json() == asset


@pytest.mark.parametrize(
    ("fmt", "category", "content_type"),
    [
        ("JPEG", "image", "image/jpeg"),
        ("WEBP", "image", "image/webp"),
        ("GIF", "gif", "image/gif"),
    ],
)
async def test_each_image_kind_is_judged_from_its_bytes(
    tenant: Tenant, fmt: str, category: str, content_type: str
) -> None:
    response = await upload(tenant, image_bytes(fmt), "no-extension")
    assert response.status_code == 201, response.text
    assert (response.json()["category"], response.json()["content_type"]) == (
        category,
        content_type,
    )
    assert len(response.json()["variants"]) == 5


async def test_an_mp4_video_is_accepted_without_crops(tenant: Tenant) -> None:
    response = await upload(tenant, mp4_bytes(), "clip.mp4", "video/mp4")
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["category"], body["content_type"], body["variants"]) == ("video", "video/mp4", [])


async def test_a_transparent_image_keeps_transparency_in_its_crops(tenant: Tenant) -> None:
    response = await upload(tenant, image_bytes("PNG", mode="RGBA"))
    assert {v["content_type"] for v in response.json()["variants"]} == {"image/png"}


BAD_UPLOADS = [
    (
        "a lying content type",
        image_bytes("JPEG"),
        "photo.png",
        "image/png",
        422,
        "media-type-mismatch",
    ),
    (
        "an unknown kind",
        b"%PDF-1.7 not an image at all",
        "doc.pdf",
        "application/pdf",
        415,
        "unsupported-media-type",
    ),
    (
        "text named like an image",
        b"hello world, I am text",
        "cat.jpg",
        "image/jpeg",
        415,
        "unsupported-media-type",
    ),
    ("a corrupt image", image_bytes("PNG")[:300], "broken.png", "image/png", 422, "media-corrupt"),
    ("a truncated video", mp4_bytes()[:-1000], "cut.mp4", "video/mp4", 422, "media-corrupt"),
    ("an empty file", b"", "empty.png", "image/png", 422, "media-empty"),
]


@pytest.mark.parametrize(
    ("what", "data", "name", "content_type", "status", "slug"),
    BAD_UPLOADS,
    ids=[b[0] for b in BAD_UPLOADS],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    tenant: Tenant,
    storage: LocalStorage,
    what: str,
    data: bytes,
    name: str,
    content_type: str,
    status: int,
    slug: str,
) -> None:
    response = await upload(tenant, data, name, content_type)
    assert_problem(response, status, slug)
    assert (await tenant.get("/v1/media")).json()["data"] == []
    assert files_under(storage, tenant) == []


async def test_a_file_over_the_plans_limit_is_413(
    make_tenant: MakeTenant, storage: LocalStorage
) -> None:
    tenant = await make_tenant(plan="free")  # 25 MiB
    limit = 25 * 1024 * 1024
    just_over = b"\x89PNG\r\n\x1a\n" + bytes(limit - 7)
    body = assert_problem(
        await upload(tenant, just_over, "big.png", "image/png"), 413, "media-too-large"
    )
    assert body["limit_value"] == limit
    way_over = just_over + bytes(1024 * 1024)
    assert_problem(
        await upload(tenant, way_over, "bigger.png", "image/png"), 413, "media-too-large"
    )
    assert files_under(storage, tenant) == []
    assert (await tenant.get("/v1/media")).json()["data"] == []


async def test_an_upload_must_be_a_multipart_file(tenant: Tenant) -> None:
    assert_problem(await tenant.post("/v1/media", json={"file": "x"}), 422, "validation-error")
    assert_problem(await tenant.post("/v1/media", data={"other": "x"}), 422, "validation-error")
    extra = await tenant.post(
        "/v1/media",
        files={"file": ("a.png", image_bytes("PNG"), "image/png")},
        data={"caption": "x"},
    )
    problem = assert_problem(extra, 422, "validation-error")
    assert problem["errors"] == [  # the description allows only `file`
        {"loc": ["body", "caption"], "message": "unknown field", "type": "extra_forbidden"}
    ]
    assert (await tenant.get("/v1/media")).json()["data"] == []


async def test_list_filters_by_category_and_paginates(tenant: Tenant) -> None:
    image = (await upload(tenant, image_bytes("PNG"))).json()["id"]
    video = (await upload(tenant, mp4_bytes())).json()["id"]
    gif = (await upload(tenant, image_bytes("GIF"))).json()["id"]
    videos = (await tenant.get("/v1/media", params={"category": "video"})).json()["data"]
    assert [m["id"] for m in videos] == [video]
    first = (await tenant.get("/v1/media", params={"limit": 2})).json()
    rest = (await tenant.get("/v1/media", params={"cursor": first["next_cursor"]})).json()
    assert [m["id"] for m in first["data"] + rest["data"]] == [image, video, gif]
    assert rest["next_cursor"] is None


async def test_delete_removes_the_row_and_the_files(tenant: Tenant, storage: LocalStorage) -> None:
    asset = (await upload(tenant, image_bytes("PNG"))).json()
    assert (await tenant.delete(f"/v1/media/{asset['id']}")).status_code == 204
    assert_problem(await tenant.get(f"/v1/media/{asset['id']}"), 404, "not-found")
    assert files_under(storage, tenant) == []


async def test_an_unknown_variant_is_404(tenant: Tenant) -> None:
    asset = (await upload(tenant, image_bytes("PNG"))).json()
    assert_problem(await tenant.get(f"{asset['url']}?variant=panorama"), 404, "not-found")


async def test_uploads_are_idempotent(tenant: Tenant) -> None:
    data = image_bytes("PNG")
    headers = {**tenant.auth, "Idempotency-Key": "upload-1"}
    first = await tenant.http.post(
        "/v1/media", headers=headers, files={"file": ("a.png", data, "image/png")}
    )
    again = await tenant.http.post(
        "/v1/media", headers=headers, files={"file": ("a.png", data, "image/png")}
    )
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert len((await tenant.get("/v1/media")).json()["data"]) == 1
    other = await tenant.http.post(
        "/v1/media", headers=headers, files={"file": ("a.png", image_bytes("JPEG"), "image/jpeg")}
    )
    assert_problem(other, 422, "idempotency-key-reused")


async def test_permissions_apply_to_media(tenant: Tenant) -> None:
    asset = (await upload(tenant, image_bytes("PNG"))).json()
    viewer = await tenant.member_with_key("viewer")
    assert (await viewer.get(f"/v1/media/{asset['id']}")).status_code == 200
    assert (await viewer.get(asset["url"])).status_code == 200
    assert (
        assert_problem(await upload(viewer, image_bytes("PNG")), 403, "permission-denied")[
            "permission"
        ]
        == "media:upload"
    )
    contributor = await tenant.member_with_key("contributor")
    assert (await upload(contributor, image_bytes("PNG"))).status_code == 201
    assert (
        assert_problem(
            await contributor.delete(f"/v1/media/{asset['id']}"), 403, "permission-denied"
        )["permission"]
        == "media:delete"
    )


async def test_another_workspaces_media_answer_404(
    tenant: Tenant, other_tenant: Tenant, storage: LocalStorage
) -> None:
    theirs = (await upload(other_tenant, image_bytes("PNG"))).json()
    assert_problem(await tenant.get(f"/v1/media/{theirs['id']}"), 404, "not-found")
    assert_problem(await tenant.get(theirs["url"]), 404, "not-found")
    assert_problem(await tenant.delete(f"/v1/media/{theirs['id']}"), 404, "not-found")
    assert len(files_under(storage, other_tenant)) == 6


async def test_broken_multipart_and_unstorable_file_names_are_refused(
    tenant: Tenant, storage: LocalStorage
) -> None:
    no_boundary = await tenant.http.post(
        "/v1/media",
        content=b"--b\r\n\r\nx",
        headers={**tenant.auth, "Content-Type": "multipart/form-data"},
    )
    assert_problem(no_boundary, 400, "bad-request")
    part = b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
    truncated = await tenant.http.post(
        "/v1/media",
        content=part + b"no closing boundary",
        headers={**tenant.auth, "Content-Type": "multipart/form-data; boundary=b"},
    )
    assert_problem(truncated, 422, "validation-error")  # the file part never completed
    # Raw, as a hostile client sends it (httpx would escape the NUL as %00).
    named = await tenant.http.post(
        "/v1/media",
        content=b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\x00.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + image_bytes("PNG") + b"\r\n--b--\r\n",
        headers={**tenant.auth, "Content-Type": "multipart/form-data; boundary=b"},
    )
    problem = assert_problem(named, 422, "validation-error")
    assert problem["errors"][0]["loc"] == ["body", "file", "filename"]  # type: ignore[index]
    assert files_under(storage, tenant) == []
    assert (await tenant.get("/v1/media")).json()["data"] == []


async def test_alt_text_is_set_replaced_and_removed(tenant: Tenant) -> None:
    media = (await upload(tenant, image_bytes("PNG"), "a.png", "image/png")).json()
    assert media["alt_text"] is None
    path = f"/v1/media/{media['id']}"
    described = await tenant.patch(path, json={"alt_text": "  A red square  "})
    assert (described.status_code, described.json()["alt_text"]) == (200, "A red square")
    assert (await tenant.get(path)).json()["alt_text"] == "A red square"
    cleared = await tenant.patch(path, json={"alt_text": None})
    assert cleared.json()["alt_text"] is None


async def test_bad_alt_text_is_refused_and_changes_nothing(
    tenant: Tenant, other_tenant: Tenant
) -> None:
    media = (await upload(tenant, image_bytes("PNG"), "a.png", "image/png")).json()
    path = f"/v1/media/{media['id']}"
    assert (await tenant.patch(path, json={"alt_text": "kept"})).status_code == 200
    for body, kind in [
        ({"alt_text": "x" * 1501}, "string_too_long"),
        ({"alt_text": "bad\x00byte"}, "unstorable_text"),
        ({"alt_text": "x", "caption": "y"}, "extra_forbidden"),
        ({}, "missing"),
    ]:
        refused = assert_problem(await tenant.patch(path, json=body), 422, "validation-error")
        assert refused["errors"][0]["type"] == kind, refused  # type: ignore[index]
    viewer = await tenant.member_with_key("viewer")
    assert_problem(await viewer.patch(path, json={"alt_text": "no"}), 403, "permission-denied")
    assert_problem(await other_tenant.patch(path, json={"alt_text": "no"}), 404, "not-found")
    assert (await tenant.get(path)).json()["alt_text"] == "kept"
