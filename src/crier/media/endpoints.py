"""Media assets: upload, list, read, download, delete."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import FileResponse
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException

from crier.auth.dependencies import IdempotentRequest, requires
from crier.auth.permissions import Permission
from crier.auth.principal import Principal
from crier.kit.body import JsonRoute, MalformedBody, PayloadTooLarge, allow_body, text_problem
from crier.kit.errors import NotFound, ValidationFailed, field_error
from crier.kit.http import DbSession, RequestClock, problem_responses, respond
from crier.kit.idempotency import fingerprint
from crier.kit.pagination import Page, PageRequest, make_page, page_request
from crier.media import service
from crier.media.content import KINDS
from crier.media.schemas import MediaAsset, MediaCategory, MediaId, MediaUpdate
from crier.media.variants import VARIANT_NAMES

router = APIRouter(prefix="/media", tags=["Media"], route_class=JsonRoute)

CanRead = Annotated[Principal, requires(Permission.MEDIA_READ)]
CanUpload = Annotated[Principal, requires(Permission.MEDIA_UPLOAD)]
CanDelete = Annotated[Principal, requires(Permission.MEDIA_DELETE)]

# Multipart framing around the file: boundaries and part headers.
MULTIPART_OVERHEAD = 64 * 1024

_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "additionalProperties": False,
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "description": "JPEG, PNG, WebP or GIF image, or MP4 video.",
                        }
                    },
                }
            }
        },
    }
}


@asynccontextmanager
async def _form(request: Request, limit: int) -> AsyncIterator[FormData]:
    """The multipart form of an upload, or the problem with it."""
    try:
        form = await request.form(max_files=1, max_fields=4)
    except PayloadTooLarge:
        raise service.MediaTooLarge(
            f"The upload is larger than the {limit} bytes the plan allows.", limit_value=limit
        ) from None
    except MultiPartException as exc:
        raise MalformedBody(f"The multipart body could not be read: {exc.message}") from None
    try:
        yield form
    finally:
        await form.close()


async def _chunks(upload: UploadFile) -> AsyncIterator[bytes]:
    while chunk := await upload.read(service.CHUNK):
        yield chunk


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=MediaAsset,
    responses=problem_responses(401, 403, 409, 413, 415, 422),
    openapi_extra=_UPLOAD_BODY,
)
async def upload_media(
    request: Request, principal: CanUpload, session: DbSession, idem: IdempotentRequest
) -> Response:
    """Upload a file as the multipart field `file`.

    Its kind (`category`, `content_type`) is judged from its content, not its name; a
    declared type that contradicts the content is refused. Images get derived crops
    (`square`, `portrait`, `landscape`, `vertical`, `thumbnail`). The plan caps the size
    (`media-too-large`). A refused upload leaves no file and no record behind.
    """
    limit = await service.upload_limit(session, principal.workspace_id)
    allow_body(request, limit + MULTIPART_OVERHEAD)
    async with _form(request, limit) as form:
        if unknown := sorted(set(form.keys()) - {"file"}):
            raise ValidationFailed(
                "The upload takes the one field 'file'.",
                [
                    field_error(["body", name], "unknown field", "extra_forbidden")
                    for name in unknown
                ],
            )
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ValidationFailed(
                "Send the file as the multipart/form-data field 'file'.",
                [field_error(["body", "file"], "a file is required", "missing")],
            )
        if upload.filename and (problem := text_problem(upload.filename)):
            raise ValidationFailed(
                f"The file name is refused: {problem}.",
                [field_error(["body", "file", "filename"], problem, "unstorable_text")],
            )
        received = await service.receive(
            _chunks(upload),
            limit,
            None,
            request.app.state.spool_dir,
            upload.filename,
            upload.content_type,
        )
    try:
        return respond(
            await idem.create(
                fingerprint(
                    "POST",
                    "/v1/media",
                    {
                        "sha256": received.sha256,
                        "filename": received.filename,
                        "content_type": received.declared_type,
                    },
                ),
                lambda: service.store(session, request.app.state.storage, principal, received),
            )
        )
    finally:
        received.discard()


@router.get("", response_model=Page[MediaAsset], responses=problem_responses(401, 403, 422))
async def list_media(
    _: CanRead,
    session: DbSession,
    page: Annotated[PageRequest, Depends(page_request)],
    category: Annotated[MediaCategory | None, Query(description="Only this category.")] = None,
) -> Page[MediaAsset]:
    """Media assets, oldest first."""
    rows = await service.list_media(
        session, category.value if category else None, page.after, page.limit + 1
    )
    items, cursor = make_page(rows, page.limit, lambda m: m.id)
    return Page[MediaAsset](data=items, next_cursor=cursor)


@router.get(
    "/{media_id}", response_model=MediaAsset, responses=problem_responses(401, 403, 404, 422)
)
async def get_media(media_id: MediaId, _: CanRead, session: DbSession) -> MediaAsset:
    """One asset, with its variants and how many posts use it."""
    return service.to_schema(await service.get_asset(session, media_id))


@router.patch(
    "/{media_id}", response_model=MediaAsset, responses=problem_responses(401, 403, 404, 422)
)
async def update_media(
    media_id: MediaId, data: MediaUpdate, _: CanUpload, session: DbSession
) -> MediaAsset:
    """Set an asset's `alt_text` (up to 1,500 characters; null removes it). Networks that
    take a description get it with the media when a post is sent."""
    text = data.alt_text
    if text is not None and (problem := text_problem(text)):
        raise ValidationFailed(
            f"The alt text is refused: {problem}.",
            [field_error(["body", "alt_text"], problem, "unstorable_text")],
        )
    return await service.describe(session, media_id, text)


@router.get(
    "/{media_id}/file",
    response_class=FileResponse,
    responses={
        **problem_responses(401, 403, 404, 422),
        200: {
            "description": "The file's bytes, served as the type Crier judged from its content.",
            "content": {
                kind: {"schema": {"type": "string", "format": "binary"}}
                for kind in sorted({kind.content_type for kind in KINDS})
            },
        },
    },
)
async def download_media(
    media_id: MediaId,
    request: Request,
    _: CanRead,
    session: DbSession,
    variant: Annotated[
        str | None,
        Query(description=f"A variant instead of the original: {', '.join(VARIANT_NAMES)}."),
    ] = None,
) -> FileResponse:
    """The original file, or one of its variants."""
    asset = await service.get_asset(session, media_id)
    path, content_type = service.file_of(asset, variant)
    storage = request.app.state.storage
    if not storage.exists(path):
        raise NotFound("The asset's file is missing from storage.")
    return FileResponse(storage.local_path(path), media_type=content_type)


@router.delete(
    "/{media_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401, 403, 404, 409, 422),
)
async def delete_media(
    media_id: MediaId, request: Request, _: CanDelete, session: DbSession, clock: RequestClock
) -> Response:
    """Delete an asset and its files. Refused (`media-in-use`, naming the posts) while a
    scheduled, queued or publishing post uses it."""
    await service.delete_media(session, request.app.state.storage, media_id, clock.now())
    return Response(status_code=status.HTTP_204_NO_CONTENT)
