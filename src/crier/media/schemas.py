"""Media resources."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

MediaId = Annotated[UUID, Field(description="Identifier of a media asset.")]


class MediaCategory(StrEnum):
    IMAGE = "image"
    GIF = "gif"
    VIDEO = "video"


class MediaVariant(BaseModel):
    name: str = Field(description="`square`, `portrait`, `landscape`, `vertical` or `thumbnail`.")
    width: int = Field(description="Width in pixels.")
    height: int = Field(description="Height in pixels.")
    content_type: str = Field(description="MIME type of the variant.")
    storage_path: str = Field(description="Where the variant's bytes live in storage.")
    url: str = Field(description="Where to download the variant.")


class MediaAsset(BaseModel):
    id: MediaId
    category: MediaCategory = Field(description="`image`, `gif` or `video`, judged from content.")
    content_type: str = Field(description="MIME type, judged from content.")
    size_bytes: int = Field(description="Size of the original file.")
    width: int | None = Field(description="Width in pixels (images).")
    height: int | None = Field(description="Height in pixels (images).")
    filename: str | None = Field(description="The uploaded file's name, as sent.")
    alt_text: str | None = Field(
        description="What the media shows, for people who cannot see it; sent with it to "
        "the networks that take a description (Mastodon, Bluesky, X, LinkedIn)."
    )
    sha256: str = Field(description="SHA-256 of the original file, hex.")
    storage_path: str = Field(description="Where the original's bytes live in storage.")
    usage_count: int = Field(description="How many posts (not cancelled) use this asset.")
    url: str = Field(description="Where to download the original.")
    variants: list[MediaVariant] = Field(description="Derived crops (images and GIFs).")
    created_at: datetime = Field(description="When the asset was uploaded.")


ALT_TEXT_MAX = 1500
"""Mastodon's limit on a media description; the smallest of the networks Crier sends it to."""


class MediaUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alt_text: str | None = Field(
        max_length=ALT_TEXT_MAX,
        description="The media's description (alt text); null removes it.",
    )
