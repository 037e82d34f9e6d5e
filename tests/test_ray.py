"""`stylerec embed --ray`: the Ray Data pipeline on a local Ray instance (this machine's 2 CPUs) writes the store
the local path writes: same ids, same model id, bit-identical vectors, bad files reported the
same way. Ray runs in a subprocess (the CLI), so its threads never share a process with the rest of the suite."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import numpy as np
import pytest

from transfer.store import EmbeddingStore


@pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")
def test_ray_pipeline_matches_the_local_path(demo_catalog, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(demo_catalog / "images", images, ignore=lambda d, names: [n for n in names if n > "D0020.jpg"])
    (images / "broken.jpg").write_bytes(b"not an image")

    def embed(out: str, *extra: str) -> str:
        args = ["embed", str(images), "--out", str(tmp_path / out), "--image-size", "64", "--dim", "16", *extra]
        command = [sys.executable, "-m", "recsys.cli", *args, "--fit-samples", "8", "-q"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    assert "20 added" in embed("local")
    assert "20 added" in embed("ray", "--ray")
    local = EmbeddingStore.load(tmp_path / "local")
    via_ray = EmbeddingStore.load(tmp_path / "ray")
    assert via_ray.model_id == local.model_id and via_ray.ids == local.ids
    np.testing.assert_array_equal(via_ray.vectors, local.vectors)  # bit for bit
    assert via_ray.failures.keys() == local.failures.keys() == {"broken"}
