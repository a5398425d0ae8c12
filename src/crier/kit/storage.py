"""Where media bytes live: a small interface, and the local folder implementation.

Paths are relative (`<workspace>/<asset>/<name>`) and made only from ids Crier generated, so
an object store can implement the same four methods without changing the callers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import BinaryIO, Protocol


class Storage(Protocol):
    def write(self, path: str, source: BinaryIO) -> None: ...

    def local_path(self, path: str) -> Path: ...

    def exists(self, path: str) -> bool: ...

    def delete(self, path: str) -> None: ...


class LocalStorage:
    """Files under one root folder (by default `CRIER_DATA_DIR/media`)."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def _resolve(self, path: str) -> Path:
        full = (self.root / path).resolve()
        if not full.is_relative_to(self.root):
            raise ValueError(f"storage path escapes the root: {path!r}")
        return full

    def write(self, path: str, source: BinaryIO) -> None:
        """Write atomically: a reader never sees half a file."""
        target = self._resolve(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        with partial.open("wb") as out:
            shutil.copyfileobj(source, out, length=1024 * 1024)
        os.replace(partial, target)

    def local_path(self, path: str) -> Path:
        return self._resolve(path)

    def exists(self, path: str) -> bool:
        return self._resolve(path).is_file()

    def delete(self, path: str) -> None:
        """Delete a file if present, and its folder once empty."""
        target = self._resolve(path)
        target.unlink(missing_ok=True)
        parent = target.parent
        while parent != self.root and parent.is_dir() and not any(parent.iterdir()):
            parent.rmdir()
            parent = parent.parent
