"""Real files of every accepted kind, made on the spot."""

from __future__ import annotations

import io
import struct

from PIL import Image


def image_bytes(fmt: str, size: tuple[int, int] = (1200, 800), mode: str = "RGB") -> bytes:
    image = Image.new(mode, size, (200, 30, 30) if mode == "RGB" else (200, 30, 30, 128))
    out = io.BytesIO()
    if fmt == "GIF":
        frames = [image.convert("P"), Image.new("RGB", size, (0, 0, 255)).convert("P")]
        frames[0].save(out, "GIF", save_all=True, append_images=frames[1:], duration=100)
    else:
        image.save(out, fmt)
    return out.getvalue()


def box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def mp4_bytes() -> bytes:
    """A structurally valid MP4: ftyp, moov (with an mvhd) and mdat boxes."""
    ftyp = box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2avc1mp41")
    moov = box(b"moov", box(b"mvhd", bytes(100)))
    mdat = box(b"mdat", bytes(2048))
    return ftyp + moov + mdat
