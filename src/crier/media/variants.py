"""Derived crops of an image, made once at upload: each platform picks the one it wants."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageOps


@dataclass(frozen=True)
class Crop:
    name: str
    ratio: float | None  # width / height; None keeps the original shape
    max_width: int
    max_height: int


CROPS = (
    Crop("square", 1.0, 1080, 1080),
    Crop("portrait", 4 / 5, 1080, 1350),
    Crop("landscape", 1.91, 1200, 628),
    Crop("vertical", 9 / 16, 1080, 1920),
    Crop("thumbnail", None, 320, 320),
)
VARIANT_NAMES = tuple(c.name for c in CROPS)


@dataclass(frozen=True)
class Variant:
    name: str
    width: int
    height: int
    content_type: str
    extension: str
    data: bytes


def make_variants(path: Path) -> list[Variant]:
    """Centre crops at each ratio (and a thumbnail), never upscaled; EXIF rotation applied.

    A GIF's variants are stills of its first frame. Images with transparency stay PNG;
    the rest become JPEG.
    """
    with Image.open(path) as source:
        source.seek(0)
        image = ImageOps.exif_transpose(source.copy())
    transparent = image.mode in ("RGBA", "LA") or (
        image.mode == "P" and "transparency" in image.info
    )
    image = image.convert("RGBA" if transparent else "RGB")
    variants = []
    for crop in CROPS:
        shaped = image if crop.ratio is None else _centre_crop(image, crop.ratio)
        shaped = shaped.copy()
        shaped.thumbnail((crop.max_width, crop.max_height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if transparent:
            shaped.save(out, "PNG", optimize=True)
            variants.append(
                Variant(crop.name, shaped.width, shaped.height, "image/png", "png", out.getvalue())
            )
        else:
            shaped.save(out, "JPEG", quality=85, optimize=True)
            variants.append(
                Variant(crop.name, shaped.width, shaped.height, "image/jpeg", "jpg", out.getvalue())
            )
    return variants


def _centre_crop(image: Image.Image, ratio: float) -> Image.Image:
    width, height = image.size
    if width / height > ratio:
        new_width = max(1, round(height * ratio))
        left = (width - new_width) // 2
        return image.crop((left, 0, left + new_width, height))
    new_height = max(1, round(width / ratio))
    top = (height - new_height) // 2
    return image.crop((0, top, width, top + new_height))
