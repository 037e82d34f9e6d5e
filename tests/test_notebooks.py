"""The walkthrough notebooks run top to bottom, headless (any error fails the test)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs(path, tmp_path, monkeypatch, demo_shop):
    """In a work folder of its own, which starts with the session's demo shop (catalog and style vectors, built as
    `notebooks/demo_setup.py` builds them): the notebook remakes the catalog, and its embedding step, incremental,
    finds every image already embedded (the step itself is tested in `test_embed.py`)."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(path, as_version=4)
    catalog_dir, embeddings, _ = demo_shop
    shutil.copytree(catalog_dir, tmp_path / "demo")
    shutil.copytree(embeddings, tmp_path / "store")
    monkeypatch.setenv("MPLBACKEND", os.environ.get("MPLBACKEND", "Agg"))
    monkeypatch.setenv("STYLEREC_NOTEBOOK_WORK", str(tmp_path))  # the kernel inherits it
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute()
    errors = [o for cell in notebook.cells for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
