"""Versioned model folders: each save is a new `vNNNNNN` folder, made current by one atomic rename of a pointer.

    <dir>/CURRENT        name of the current version (replaced atomically)
    <dir>/v000003/...    whatever the model writes

A reader loads the version CURRENT names, so a process killed in the middle of a save, or a reader in another
process, never sees half a model. The same layout as the FAISS index (`index.persistence`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

CURRENT = "CURRENT"
KEEP_VERSIONS = 3


def current_version(folder: str | os.PathLike) -> str | None:
    """The name of the current version in `folder`, or None when nothing was saved there."""
    pointer = Path(folder) / CURRENT
    return pointer.read_text().strip() if pointer.exists() else None


def save_version(folder: str | os.PathLike, write: Callable[[Path], None]) -> str:
    """Call `write(staging_dir)`, then publish that folder as the new current version; returns its name.
    Older versions beyond the last few are removed (a reader of one of those has already loaded it)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    versions = sorted(p.name for p in folder.glob("v[0-9]*") if p.is_dir())
    name = f"v{int(versions[-1][1:]) + 1 if versions else 1:06d}"
    staging = folder / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    write(staging)
    for path in staging.iterdir():
        _fsync(path)
    _fsync(staging)
    os.replace(staging, folder / name)
    pointer = folder / f".{CURRENT}.tmp"
    pointer.write_text(name)
    _fsync(pointer)
    os.replace(pointer, folder / CURRENT)
    _fsync(folder)
    for old in versions[: max(0, len(versions) + 1 - KEEP_VERSIONS)]:
        shutil.rmtree(folder / old, ignore_errors=True)
    return name


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
