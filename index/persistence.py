"""Crash-safe index files: each save is a new version folder, made current by one atomic rename.

    <dir>/CURRENT              name of the current version (replaced atomically)
    <dir>/v000007/index.faiss  the serialised FAISS index
    <dir>/v000007/ids.npz      item ids and their int64 labels
    <dir>/v000007/manifest.json  embedding model id, dimension, count, spec, search parameters, checksums

A process killed in the middle of a save leaves CURRENT pointing at the previous, complete version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np

from common.atomic import atomic_write_bytes, fsync_dir, fsync_file
from common.errors import StylerecError

CURRENT = "CURRENT"
INDEX_FILE = "index.faiss"
IDS_FILE = "ids.npz"
MANIFEST_FILE = "manifest.json"
KEEP_VERSIONS = 2


class IndexFileError(StylerecError, ValueError):
    """A missing, corrupt or mismatched index on disk (503: the service cannot search without it)."""

    http_status = 503


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def current_version(folder: str | os.PathLike) -> str | None:
    """The name of the current version in `folder`, or None when nothing was saved there."""
    pointer = Path(folder) / CURRENT
    return pointer.read_text().strip() if pointer.exists() else None


def save_version(folder: str | os.PathLike, write: Callable[[Path], None], keep: int = KEEP_VERSIONS) -> str:
    """Call `write(staging_dir)`, fsync what it wrote, publish that folder as the new current version (one atomic
    rename of CURRENT) and return its name. Versions beyond the last `keep` are removed (a reader of one of those
    has already loaded it). Used for the index here and for the saved models (`recsys.shop.catalog`)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    versions = sorted(p.name for p in folder.glob("v[0-9]*") if p.is_dir())
    name = f"v{int(versions[-1][1:]) + 1 if versions else 1:06d}"
    staging = folder / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    write(staging)
    for path in staging.rglob("*"):
        if path.is_file():
            fsync_file(path)
    fsync_dir(staging)
    os.replace(staging, folder / name)  # a folder cannot be written through a temp file: staged, then renamed
    fsync_dir(folder)
    atomic_write_bytes(folder / CURRENT, name.encode())
    for old in versions[: max(0, len(versions) + 1 - keep)]:
        shutil.rmtree(folder / old, ignore_errors=True)
    return name


def write_version(folder: Path, index_bytes: bytes, ids: list[str], labels: list[int], manifest: dict) -> Path:
    """Write a complete new version, then point CURRENT at it; older versions beyond the last two are removed."""

    def write(staging: Path) -> None:
        ids_path = staging / IDS_FILE
        with open(ids_path, "wb") as f:
            np.savez(f, ids=np.asarray(ids, dtype=np.str_), labels=np.asarray(labels, dtype=np.int64))
        (staging / INDEX_FILE).write_bytes(index_bytes)
        checksums = {"index_sha256": sha256(index_bytes), "ids_sha256": sha256(ids_path.read_bytes())}
        (staging / MANIFEST_FILE).write_text(json.dumps({**manifest, **checksums}, indent=2))

    return Path(folder) / save_version(folder, write)


def read_version(folder: Path) -> tuple[bytes, list[str], list[int], dict]:
    """The current version's index bytes, ids, labels and manifest, verified against the manifest's checksums."""
    pointer = folder / CURRENT
    if not pointer.exists():
        raise IndexFileError(f"no index in {folder} (run `stylerec index build`)")
    version = folder / pointer.read_text().strip()
    try:
        manifest = json.loads((version / MANIFEST_FILE).read_text())
        index_bytes = (version / INDEX_FILE).read_bytes()
        ids_bytes = (version / IDS_FILE).read_bytes()
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"{version}: incomplete or unreadable index files ({exc})") from exc
    if sha256(index_bytes) != manifest.get("index_sha256") or sha256(ids_bytes) != manifest.get("ids_sha256"):
        raise IndexFileError(f"{version}: checksum mismatch, the index files are corrupt")
    with np.load(version / IDS_FILE, allow_pickle=False) as z:
        ids, labels = z["ids"].tolist(), z["labels"].tolist()
    if len(ids) != manifest.get("count"):
        raise IndexFileError(f"{version}: manifest says {manifest.get('count')} items, found {len(ids)}")
    return index_bytes, ids, labels, manifest
