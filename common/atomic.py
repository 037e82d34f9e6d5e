"""Atomic file writes: a reader sees the old file or the new one, never half of one, and a crash loses neither.

Every writer in stylerec goes through here: write to a temporary file in the same folder, flush, fsync, `os.replace`
onto the target, fsync the folder (so the rename itself survives a power cut). When the writer raises, the temporary
file is removed and the old file is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

__all__ = ["atomic_write", "atomic_write_bytes", "fsync_dir", "fsync_file"]


def fsync_file(path: str | os.PathLike) -> None:
    """fsync a file or folder that is already written (a folder's fsync makes the names in it durable)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """fsync a folder, so that the renames and creations inside it survive a crash."""
    fsync_file(folder)


def atomic_write(path: str | os.PathLike, write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(f)` on a binary file opened in `path`'s folder, then publish it as `path` atomically.

    `write` is any writer that takes a file object (`f.write`, `np.save(f, ...)`, `torch.save(obj, f)`,
    `image.save(f, "JPEG")`). The folder is created when missing. Returns `path` as a Path.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; the files we publish are ordinary readable files
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)
    return path


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    """Write `data` to `path` atomically (see `atomic_write`)."""
    return atomic_write(path, lambda f: f.write(data))
