"""The one catalog opener: persisted models loaded (not retrained), and processes sharing one store stay alike."""

from __future__ import annotations

from index.persistence import current_version
from recsys.shop.catalog import open_catalog


def test_processes_sharing_a_store_serve_alike(service_settings):
    paths = service_settings.catalog_paths()
    a, b = open_catalog(paths), open_catalog(paths)  # two web workers
    try:
        assert a.versions.cf == b.versions.cf == current_version(paths.models / "cf")
        counts = a.recommender.cf.counts
        for item in ("D0010", "D0016", "D0022"):
            a.record_event("two-workers", item, "purchase")
        assert a.recommender.cf.counts is counts  # folded in beside the matrix, not by rebuilding it
        b.sync()  # what every request does first: events other workers recorded are folded in
        assert [r.item_id for r in b.feed("two-workers", 8)] == [r.item_id for r in a.feed("two-workers", 8)]
        assert b.recommender.cf.has_user("two-workers")

        retrained = a.retrain_cf()  # an admin change in one worker: a new persisted version
        assert retrained["version"] == current_version(paths.models / "cf") != b.versions.cf
        b.sync()
        assert b.versions.cf == retrained["version"]
        assert [r.item_id for r in b.feed("U0003", 8)] == [r.item_id for r in a.feed("U0003", 8)]
    finally:
        a.close()
        b.close()
    reopened = open_catalog(paths)  # a restart loads that version: nothing is retrained
    assert reopened.versions.cf == retrained["version"] and reopened.versions.index is not None
    reopened.close()
