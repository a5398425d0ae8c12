"""Receiving uploads, keeping files and rows in step, and refusing to delete media in use."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from crier.auth.principal import Principal
from crier.kit.db import after_commit, after_rollback
from crier.kit.errors import Conflict, CrierError, NotFound
from crier.kit.ids import new_id
from crier.kit.storage import Storage
from crier.media import repository
from crier.media.content import Inspected, inspect_file
from crier.media.schemas import MediaAsset as MediaAssetOut
from crier.media.schemas import MediaCategory, MediaVariant
from crier.media.variants import make_variants
from crier.models import MediaAsset
from crier.webhook import events
from crier.webhook.events import EventType
from crier.workspace import plans
from crier.workspace import repository as workspace_repository

CHUNK = 1024 * 1024


class MediaTooLarge(CrierError):
    """The file is larger than the workspace's plan accepts. `limit_value` is the largest
    size, in bytes, the plan allows."""

    slug = "media-too-large"
    title = "Media too large"
    status = 413


class MediaEmpty(CrierError):
    """The uploaded file is empty."""

    slug = "media-empty"
    title = "Empty media"
    status = 422


class MediaInUse(Conflict):
    """The asset is used by posts that are scheduled, queued or publishing, so it cannot be
    deleted yet. `posts` lists them. Once they publish or are cancelled, it can be."""

    slug = "media-in-use"
    title = "Media in use"


@dataclass
class Received:
    """An upload spooled to a local file, with what was measured on the way."""

    path: Path
    size: int
    sha256: str
    filename: str | None
    declared_type: str | None

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


async def upload_limit(session: AsyncSession, workspace_id: UUID) -> int:
    workspace = await workspace_repository.get(session, workspace_id)
    assert workspace is not None
    return plans.limits_of(workspace.plan).media_upload_bytes


async def receive(
    chunks: AsyncIterator[bytes],
    limit: int,
    plan: str | None,
    spool_dir: Path,
    filename: str | None,
    declared_type: str | None,
) -> Received:
    """Spool an upload to disk, hashing it, and stop as soon as it passes `limit` bytes."""
    path = await asyncio.to_thread(_spool_file, spool_dir)
    digest = hashlib.sha256()
    size = 0
    try:
        with path.open("wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > limit:
                    raise MediaTooLarge(
                        f"The file is larger than the {limit} bytes the plan allows.",
                        limit_value=limit,
                        plan=plan,
                    )
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise MediaEmpty("The uploaded file is empty.")
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return Received(path, size, digest.hexdigest(), filename, declared_type)


def _spool_file(spool_dir: Path) -> Path:
    spool_dir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=spool_dir, prefix="upload-")
    os.close(fd)
    return Path(name)


async def store(
    session: AsyncSession, storage: Storage, principal: Principal, received: Received
) -> MediaAssetOut:
    """Judge the file, derive its crops, store everything, and record the asset.

    Files are written before the row; if the transaction then fails, they are deleted, so a
    failed upload leaves neither a row nor a file behind.
    """
    asset_id = new_id()
    folder = f"{principal.workspace_id}/{asset_id}"
    written: list[str] = []
    after_rollback(session, partial(_delete_files, storage, written))
    # Decoding and resizing images is CPU work: keep it off the event loop.
    inspected, original, variants = await asyncio.to_thread(
        _write_files, storage, received, folder, written
    )
    asset = MediaAsset(
        workspace_id=principal.workspace_id,
        id=asset_id,
        category=inspected.kind.category,
        content_type=inspected.kind.content_type,
        storage_path=original,
        size_bytes=received.size,
        filename=(received.filename or None) and received.filename[:255],
        sha256=received.sha256,
        width=inspected.width,
        height=inspected.height,
        variants=variants,
    )
    session.add(asset)
    await session.flush()
    await session.refresh(asset)
    return to_schema(asset)


def _write_files(
    storage: Storage, received: Received, folder: str, written: list[str]
) -> tuple[Inspected, str, list[dict[str, Any]]]:
    """Judge the file, write its variants and the original; `written` tracks every file."""
    inspected = inspect_file(received.path, received.declared_type)
    variants: list[dict[str, Any]] = []
    if inspected.kind.category in ("image", "gif"):
        for variant in make_variants(received.path):
            path = f"{folder}/{variant.name}.{variant.extension}"
            written.append(path)
            storage.write(path, io.BytesIO(variant.data))
            variants.append(
                {
                    "name": variant.name,
                    "width": variant.width,
                    "height": variant.height,
                    "content_type": variant.content_type,
                    "storage_path": path,
                }
            )
    original = f"{folder}/original.{inspected.kind.extension}"
    written.append(original)
    with received.path.open("rb") as source:
        storage.write(original, source)
    return inspected, original, variants


def to_schema(asset: MediaAsset) -> MediaAssetOut:
    base = f"/v1/media/{asset.id}/file"
    return MediaAssetOut(
        id=asset.id,
        category=MediaCategory(asset.category),
        content_type=asset.content_type,
        size_bytes=asset.size_bytes,
        width=asset.width,
        height=asset.height,
        filename=asset.filename,
        alt_text=asset.alt_text,
        sha256=asset.sha256,
        storage_path=asset.storage_path,
        usage_count=asset.usage_count,
        url=base,
        variants=[MediaVariant(**v, url=f"{base}?variant={v['name']}") for v in asset.variants],
        created_at=asset.created_at,
    )


async def describe(session: AsyncSession, media_id: UUID, alt_text: str | None) -> MediaAssetOut:
    """Set (or with None, remove) an asset's alt text. Posts already sent keep theirs."""
    asset = await get_asset(session, media_id)
    asset.alt_text = alt_text.strip() if alt_text and alt_text.strip() else None
    await session.flush()
    return to_schema(asset)


async def get_asset(session: AsyncSession, media_id: UUID) -> MediaAsset:
    asset = await repository.get(session, media_id)
    if asset is None:
        raise NotFound("No media asset with this id in this workspace.")
    return asset


def file_of(asset: MediaAsset, variant: str | None) -> tuple[str, str]:
    """The storage path and content type of the original or of one variant."""
    if variant is None:
        return asset.storage_path, asset.content_type
    for v in asset.variants:
        if v["name"] == variant:
            return v["storage_path"], v["content_type"]
    raise NotFound(f"This asset has no '{variant}' variant.")


async def list_media(
    session: AsyncSession, category: str | None, after: UUID | None, limit: int
) -> list[MediaAssetOut]:
    rows = await repository.list_media(session, category=category, after=after, limit=limit)
    return [to_schema(a) for a in rows]


async def delete_media(
    session: AsyncSession, storage: Storage, media_id: UUID, now: datetime
) -> None:
    """Delete an asset and its files, unless a post about to publish uses it.

    The asset row is locked first, and scheduling a post locks its media against deletion,
    so neither can slip past the other.
    """
    asset = await repository.get(session, media_id, lock=True)
    if asset is None:
        raise NotFound("No media asset with this id in this workspace.")
    pinned = await repository.pinning_posts(session, media_id)
    if pinned:
        raise MediaInUse(
            f"{len(pinned)} scheduled post(s) use this asset; cancel them or wait until they "
            "publish.",
            posts=[str(p) for p in pinned],
        )
    paths = [asset.storage_path, *(v["storage_path"] for v in asset.variants)]
    shown = to_schema(asset)
    await session.delete(asset)
    await session.flush()
    await events.emit(session, now, EventType.MEDIA_DELETED, shown)
    after_commit(session, partial(_delete_files, storage, paths))


def _delete_files(storage: Storage, paths: list[str]) -> None:
    for path in paths:
        storage.delete(path)
