"""What an uploaded file really is, judged by its bytes, never by its name."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from crier.kit.errors import CrierError

# Refuse decompression bombs well before Pillow's own (warning-only) threshold.
Image.MAX_IMAGE_PIXELS = 60_000_000


class UnsupportedMedia(CrierError):
    """The file is not of a kind Crier accepts. Accepted: JPEG, PNG, WebP and GIF images,
    and MP4 video. The kind is judged from the file's content, not its name."""

    slug = "unsupported-media-type"
    title = "Unsupported media type"
    status = 415


class MediaTypeMismatch(CrierError):
    """The declared content type of the upload contradicts its content (for example a JPEG
    sent as `image/png`). Send the right type, or `application/octet-stream` to let Crier
    judge it."""

    slug = "media-type-mismatch"
    title = "Content type does not match the content"
    status = 422


class CorruptMedia(CrierError):
    """The file has the signature of a supported kind but cannot be read as one: it is
    truncated or damaged, or too large in pixels to process safely."""

    slug = "media-corrupt"
    title = "Corrupt media"
    status = 422


@dataclass(frozen=True)
class MediaKind:
    category: str
    content_type: str
    extension: str


JPEG = MediaKind("image", "image/jpeg", "jpg")
PNG = MediaKind("image", "image/png", "png")
WEBP = MediaKind("image", "image/webp", "webp")
GIF = MediaKind("gif", "image/gif", "gif")
MP4 = MediaKind("video", "video/mp4", "mp4")
KINDS = (JPEG, PNG, WEBP, GIF, MP4)
_PIL_FORMATS = {"JPEG": JPEG, "PNG": PNG, "WEBP": WEBP, "GIF": GIF}
_TRUSTED_AS_UNKNOWN = {"", "application/octet-stream"}


@dataclass(frozen=True)
class Inspected:
    kind: MediaKind
    width: int | None
    height: int | None


def sniff(head: bytes) -> MediaKind | None:
    """The kind announced by a file's first bytes."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return GIF
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return WEBP
    if head[4:8] == b"ftyp":
        return MP4
    return None


def inspect_file(path: Path, declared: str | None) -> Inspected:
    """Judge `path` by its content; refuse what is unknown, lying or unreadable."""
    with path.open("rb") as handle:
        head = handle.read(32)
    kind = sniff(head)
    if kind is None:
        raise UnsupportedMedia(
            "The file is not a JPEG, PNG, WebP or GIF image or an MP4 video.",
            declared_content_type=declared,
        )
    declared_type = (declared or "").split(";")[0].strip().lower()
    if declared_type not in _TRUSTED_AS_UNKNOWN and declared_type != kind.content_type:
        raise MediaTypeMismatch(
            f"Declared as {declared_type}, but the content is {kind.content_type}.",
            declared_content_type=declared_type,
            detected_content_type=kind.content_type,
        )
    if kind is MP4:
        _check_mp4(path)
        return Inspected(kind, None, None)
    return _check_image(path, kind)


def _check_image(path: Path, kind: MediaKind) -> Inspected:
    try:
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            if _PIL_FORMATS.get(image.format or "") is not kind:
                raise CorruptMedia(f"The content is not a valid {kind.content_type}.")
            image.load()  # decodes every byte of the first frame: catches truncation
            return Inspected(kind, image.width, image.height)
    except (
        UnidentifiedImageError,
        OSError,
        SyntaxError,
        ValueError,
        Image.DecompressionBombError,
    ) as exc:
        raise CorruptMedia(f"The {kind.content_type} image cannot be read: {exc}.") from None


def _check_mp4(path: Path) -> None:
    """Walk the top-level boxes: they must tile the file and include `moov` and `mdat`."""
    size = path.stat().st_size
    seen: set[bytes] = set()
    with path.open("rb") as handle:
        offset = 0
        while offset < size:
            header = handle.read(8)
            if len(header) < 8:
                raise CorruptMedia("The MP4 file ends inside a box header.")
            box_size, box_type = struct.unpack(">I4s", header)
            header_size = 8
            if box_size == 1:
                large = handle.read(8)
                if len(large) < 8:
                    raise CorruptMedia("The MP4 file ends inside a box header.")
                box_size = struct.unpack(">Q", large)[0]
                header_size = 16
            elif box_size == 0:
                box_size = size - offset
            if box_size < header_size or offset + box_size > size:
                raise CorruptMedia("The MP4 file is truncated or its boxes are inconsistent.")
            seen.add(box_type)
            offset += box_size
            handle.seek(offset)
    missing = {b"ftyp", b"moov", b"mdat"} - seen
    if missing:
        names = ", ".join(sorted(m.decode() for m in missing))
        raise CorruptMedia(f"The MP4 file lacks its {names} box.")
