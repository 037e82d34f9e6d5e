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
from pathlib import Path

import numpy as np

CURRENT = "CURRENT"
INDEX_FILE = "index.faiss"
IDS_FILE = "ids.npz"
MANIFEST_FILE = "manifest.json"
KEEP_VERSIONS = 2


class IndexFileError(ValueError):
    """A missing, corrupt or mismatched index on disk."""


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def write_version(folder: Path, index_bytes: bytes, ids: list[str], labels: list[int], manifest: dict) -> Path:
    """Write a complete new version, then point CURRENT at it; older versions beyond the last two are removed."""
    folder.mkdir(parents=True, exist_ok=True)
    versions = sorted(p.name for p in folder.glob("v[0-9]*") if p.is_dir())
    name = f"v{int(versions[-1][1:]) + 1 if versions else 1:06d}"
    staging = folder / f".{name}.partial"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    ids_path = staging / IDS_FILE
    with open(ids_path, "wb") as f:
        np.savez(f, ids=np.asarray(ids, dtype=np.str_), labels=np.asarray(labels, dtype=np.int64))
        f.flush()
        os.fsync(f.fileno())
    _fsync_write(staging / INDEX_FILE, index_bytes)
    manifest = {
        **manifest,
        "index_sha256": sha256(index_bytes),
        "ids_sha256": sha256(ids_path.read_bytes()),
    }
    _fsync_write(staging / MANIFEST_FILE, json.dumps(manifest, indent=2).encode())
    _fsync_dir(staging)
    os.replace(staging, folder / name)
    _fsync_dir(folder)
    pointer = folder / f".{CURRENT}.tmp"
    _fsync_write(pointer, name.encode())
    os.replace(pointer, folder / CURRENT)
    _fsync_dir(folder)
    for old in versions[: max(0, len(versions) + 1 - KEEP_VERSIONS)]:
        shutil.rmtree(folder / old, ignore_errors=True)
    return folder / name


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
