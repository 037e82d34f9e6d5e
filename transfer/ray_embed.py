"""Catalog embedding on a Ray cluster: a Ray Data pipeline with a pool of stateful encoder actors.

`embed_folder(..., ray_address=...)` (the CLI's `stylerec embed --ray [ADDRESS]`) fits the projection locally as
usual and hands the remaining images to this pipeline: `from_items` (paths) -> `map_batches` with an actor per CPU
(or per GPU when the cluster has GPUs), each holding the same encoder and projection, so the vectors and the model
id are the ones the local path writes. Files must be readable at the same paths on every node (a shared or
synced filesystem); bad files come back as per-file errors, like the local path.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np

from transfer.encoder import EncoderConfig
from transfer.projection import LinearProjection

log = logging.getLogger(__name__)


class _EncoderActor:
    """One model replica: decodes, masks and embeds a batch of paths."""

    def __init__(self, config: dict, projection: LinearProjection, max_pixels: int, threads: int) -> None:
        import torch

        from transfer.encoder import StyleEncoder

        torch.set_num_threads(max(1, threads))
        self.config = EncoderConfig.model_validate(config)
        self.encoder = StyleEncoder(self.config, projection)
        self.max_pixels = max_pixels

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from transfer.encoder import load_prepared
        from transfer.images import ImageError

        positions, errors, pixels, masks = [], [], [], []
        for position, path in zip(batch["position"], batch["path"], strict=True):
            try:
                prepared = load_prepared(path, self.config.image_size, self.config.use_mask, self.max_pixels)
            except ImageError as exc:
                positions.append(int(position))
                errors.append(str(exc))
                pixels.append(None)
                masks.append(None)
                continue
            positions.append(int(position))
            errors.append("")
            pixels.append(prepared.pixels)
            masks.append(prepared.mask)
        vectors = np.zeros((len(positions), self.config.dim), np.float32)
        good = [i for i, p in enumerate(pixels) if p is not None]
        if good:
            raw = self.encoder.raw_descriptors(
                torch.stack([pixels[i] for i in good]), torch.stack([masks[i] for i in good])
            )
            vectors[good] = self.encoder.project(raw).cpu().numpy()
        return {"position": np.array(positions), "vector": vectors, "error": np.array(errors, dtype=object)}


def ray_encode(
    paths: Sequence[str],
    positions: Sequence[int],
    config: EncoderConfig,
    projection: LinearProjection,
    address: str | None = None,
    batch_size: int = 16,
    max_pixels: int = 50_000_000,
) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    """(position, vector or None, error or None) for each path, computed on the Ray cluster at `address`
    (None: start or join a local instance)."""
    import ray

    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), max(1, int(resources.get("CPU", 1)))
    replicas = gpus if gpus else cpus
    log.info("ray: %d encoder actors on %s", replicas, f"{gpus} GPUs" if gpus else f"{cpus} CPUs")
    items = [{"position": int(p), "path": str(path)} for p, path in zip(positions, paths, strict=True)]
    dataset = ray.data.from_items(items, override_num_blocks=max(1, min(len(items), replicas * 4)))
    embedded = dataset.map_batches(
        _EncoderActor,
        fn_constructor_kwargs={
            "config": config.model_dump(mode="json"),
            "projection": projection,
            "max_pixels": max_pixels,
            "threads": 1 if not gpus else 4,
        },
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=replicas,
        num_cpus=0 if gpus else 1,
        num_gpus=1 if gpus else 0,
    )
    for row in embedded.iter_rows():
        error = str(row["error"])
        yield int(row["position"]), (None if error else np.asarray(row["vector"], np.float32)), (error or None)
