"""One index-building path (`recsys.shop.catalog.build_index`): `stylerec index build` saves a new version and
bumps the catalog generation, so a running worker serves the new index at its next sync."""

from __future__ import annotations

import sqlite3

from index.persistence import current_version
from recsys.shop.catalog import CatalogPaths, open_catalog


def _private_shop(service_settings, tmp_path) -> CatalogPaths:
    """The demo shop's store copied, with its own index and models folders (nothing shared with other tests)."""
    source, copy = sqlite3.connect(service_settings.db), sqlite3.connect(tmp_path / "shop.db")
    source.backup(copy)
    source.close()
    copy.close()
    return CatalogPaths(tmp_path / "shop.db", service_settings.embeddings, tmp_path / "index", tmp_path / "models")


def test_index_build_is_served_by_a_running_worker(service_settings, tmp_path, capsys):
    from recsys.cli import main

    paths = _private_shop(service_settings, tmp_path)
    worker = open_catalog(paths)  # a web worker: builds and saves the first index of a new shop
    try:
        first = worker.versions.index
        assert first == current_version(paths.index) and worker.versions.index_spec == "Flat"
        assert not worker.catch_up()
        build = ["index", "build", "--store", str(paths.embeddings), "--out", str(paths.index), "--spec", "HNSW16"]
        assert main([*build, "--db", str(paths.db)]) == 0
        built = current_version(paths.index)
        assert built != first
        assert worker.catch_up(), "index build must bump the catalog generation"
        worker.sync()
        assert worker.versions.index == built and worker.versions.index_spec == "HNSW16"
        assert worker.style.index.info()["spec"] == "HNSW16"
        assert [r.item_id for r in worker.similar("D0010", 5)], "the new index answers"
    finally:
        worker.close()
