import json
import shutil

import numpy as np
import pytest

from recsys.shop.demo import read_catalog
from transfer.embed import PROGRESS_DIR, embed_folder
from transfer.encoder import STYLE_LAYERS, STYLE_LAYERS_V1, EncoderConfig, StyleEncoder
from transfer.store import EmbeddingStore, StoreError

CONFIG = EncoderConfig(image_size=64, dim=16)


@pytest.fixture()
def images(tmp_path, demo_catalog):
    """Twelve demo items (two patterns x six categories... in two colourways) and one corrupt file."""
    folder = tmp_path / "images"
    folder.mkdir()
    for item_id in [f"D{n:04d}" for n in (1, 2, 9, 10, 49, 50, 57, 58, 97, 98, 105, 106)]:
        shutil.copy(demo_catalog / "images" / f"{item_id}.jpg", folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (folder / "notes.txt").write_text("ignored: not an image suffix")
    return folder


def test_first_run_embeds_everything_and_reports_bad_files(images, tmp_path):
    store, report = embed_folder(images, tmp_path / "store", CONFIG, progress=False, num_workers=0)
    assert len(store) == 12 and report.added == 12 and report.unchanged == 0
    assert set(report.failed) == {"broken"} and "broken.jpg: corrupt" in report.failed["broken"]
    assert store.vectors.shape == (12, 16)
    np.testing.assert_allclose(np.linalg.norm(store.vectors, axis=1), 1.0, rtol=1e-5)
    loaded = EmbeddingStore.load(tmp_path / "store")
    assert loaded.ids == store.ids and loaded.model_id == store.model_id
    np.testing.assert_array_equal(loaded.vectors, store.vectors)
    assert loaded.failures == {"broken": report.failed["broken"]}


def test_rerun_embeds_only_new_or_changed_files(images, tmp_path, demo_catalog):
    first, _ = embed_folder(images, tmp_path / "store", CONFIG, progress=False, num_workers=0)
    again, report = embed_folder(images, tmp_path / "store", progress=False, num_workers=0)
    assert (report.added, report.updated, report.unchanged, report.removed) == (0, 0, 12, 0)
    assert again.model_id == first.model_id
    np.testing.assert_array_equal(again.vectors, first.vectors)

    shutil.copy(demo_catalog / "images" / "D0200.jpg", images / "D0001.jpg")  # changed picture
    shutil.copy(demo_catalog / "images" / "D0201.jpg", images)  # new item
    (images / "D0002.jpg").unlink()  # gone from the catalog
    third, report = embed_folder(images, tmp_path / "store", progress=False, num_workers=0)
    assert (report.added, report.updated, report.unchanged, report.removed) == (1, 1, 10, 1)
    assert third.model_id == first.model_id and "D0002" not in third and "D0201" in third
    assert not np.allclose(third.vector("D0001"), first.vector("D0001"))
    np.testing.assert_array_equal(third.vector("D0009"), first.vector("D0009"))


def test_another_config_needs_refit(images, tmp_path):
    embed_folder(images, tmp_path / "store", CONFIG, progress=False, num_workers=0)
    other = EncoderConfig(image_size=64, dim=8)
    with pytest.raises(StoreError, match="refit"):
        embed_folder(images, tmp_path / "store", other, progress=False, num_workers=0)
    store, report = embed_folder(images, tmp_path / "store", other, refit=True, progress=False, num_workers=0)
    assert store.dim == 8 and report.added == 12


def test_a_store_from_another_encoder_version_is_kept_but_never_mixed(images, tmp_path, demo_catalog, monkeypatch):
    first, _ = embed_folder(images, tmp_path / "store", CONFIG, progress=False, num_workers=0)
    monkeypatch.setattr("transfer.encoder.PREPROCESSING_VERSION", -1)  # as if the encoder had been upgraded
    again, report = embed_folder(images, tmp_path / "store", progress=False, num_workers=0)
    assert again.model_id == first.model_id and report.unchanged == 12
    np.testing.assert_array_equal(again.vectors, first.vectors)
    shutil.copy(demo_catalog / "images" / "D0201.jpg", images)
    with pytest.raises(StoreError, match=r"1 new or changed images cannot be added.*--refit"):
        embed_folder(images, tmp_path / "store", progress=False, num_workers=0)
    renewed, report = embed_folder(images, tmp_path / "store", refit=True, progress=False, num_workers=0)
    assert report.added == 13 and renewed.model_id != first.model_id


def test_random_projection_needs_no_fit(images, tmp_path):
    config = EncoderConfig(image_size=64, dim=16, projection="random")
    store, _ = embed_folder(images, tmp_path / "store", config, progress=False, num_workers=0)
    assert len(store) == 12 and store.model_id.startswith("vgg19-facets-16-")


def test_empty_folder_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreError, match="at least 2 readable images"):
        embed_folder(tmp_path / "empty", tmp_path / "store", CONFIG, progress=False, num_workers=0)


def test_duplicate_ids_are_refused_unless_ids_come_from_paths(tmp_path, demo_catalog):
    for sub in ("a", "b"):
        (tmp_path / "imgs" / sub).mkdir(parents=True)
        for n in (1, 2):
            shutil.copy(demo_catalog / "images" / f"D000{n}.jpg", tmp_path / "imgs" / sub)
    with pytest.raises(StoreError, match="share an item id"):
        embed_folder(tmp_path / "imgs", tmp_path / "store", CONFIG, progress=False, num_workers=0)
    store, _ = embed_folder(tmp_path / "imgs", tmp_path / "s2", CONFIG, id_from="path", progress=False, num_workers=0)
    assert store.ids == ["a/D0001", "a/D0002", "b/D0001", "b/D0002"]


def test_similar_on_the_demo_catalog_finds_the_same_pattern(demo_shop):
    """Quality on the generated catalog: style neighbours share the query's pattern far above chance (1/6). On the
    session's demo shop (its 288 images embedded once, at 96 px / 64-d, by `embed_folder`)."""
    demo_catalog, embeddings, _ = demo_shop
    store = EmbeddingStore.load(embeddings)
    assert len(store.ids) == 288
    catalog = read_catalog(demo_catalog / "items.csv")
    hits = [
        catalog[other]["pattern"] == catalog[item_id]["pattern"]
        for item_id in store.ids
        for other, _ in store.similar(store.vector(item_id), 5, exclude=item_id)
    ]
    assert np.mean(hits) > 0.7
    top, score = store.similar(store.vector("D0010"), 1)[0]
    assert top == "D0010" and score == pytest.approx(1.0, abs=1e-5)


def test_an_interrupted_run_resumes_where_it_stopped(images, tmp_path, monkeypatch):
    config = EncoderConfig(image_size=64, dim=8, fit_samples=4)
    whole, _ = embed_folder(images, tmp_path / "whole", config, progress=False, num_workers=0, batch_size=2)

    calls = {"n": 0}
    real = StyleEncoder.raw_descriptors

    def crashing(self, pixels, masks):
        calls["n"] += 1
        if calls["n"] == 5:  # the fit sample (2 batches), then two batches of the rest, then Ctrl-C
            raise KeyboardInterrupt
        return real(self, pixels, masks)

    monkeypatch.setattr(StyleEncoder, "raw_descriptors", crashing)
    with pytest.raises(KeyboardInterrupt):
        embed_folder(images, tmp_path / "store", config, progress=False, num_workers=0, batch_size=2, chunk=2)
    assert not (tmp_path / "store" / "embeddings.parquet").exists()
    assert len(list((tmp_path / "store" / PROGRESS_DIR).glob("chunk-*.npz"))) >= 4

    calls["n"] = -100
    store, report = embed_folder(images, tmp_path / "store", progress=False, num_workers=0, batch_size=2, chunk=2)
    assert calls["n"] == -100 + 2  # only the last four images were embedded again
    assert report.added == 12 and set(report.failed) == {"broken"}
    assert store.model_id == whole.model_id and store.ids == whole.ids
    np.testing.assert_array_equal(store.vectors, whole.vectors)
    assert not (tmp_path / "store" / PROGRESS_DIR).exists()


def test_a_v1_store_keeps_working_until_refit_moves_it(images, tmp_path, demo_catalog):
    v1 = EncoderConfig(image_size=64, dim=16, layers=STYLE_LAYERS_V1, facets=False)
    first, _ = embed_folder(images, tmp_path / "store", v1, progress=False, num_workers=0)
    described = json.loads((tmp_path / "store" / "encoder.json").read_text())
    del described["config"]["facets"]  # as a store written before facets existed
    (tmp_path / "store" / "encoder.json").write_text(json.dumps(described))
    shutil.copy(demo_catalog / "images" / "D0201.jpg", images)
    again, report = embed_folder(images, tmp_path / "store", progress=False, num_workers=0)  # no config given
    assert again.model_id == first.model_id and report.added == 1 and report.unchanged == 12
    assert EncoderConfig.model_validate(again.encoder["config"]).layers == STYLE_LAYERS_V1
    moved, report = embed_folder(
        images, tmp_path / "store", EncoderConfig(image_size=64, dim=16), refit=True, progress=False, num_workers=0
    )
    assert moved.model_id != first.model_id and report.added == 13
    assert EncoderConfig.model_validate(moved.encoder["config"]).layers == STYLE_LAYERS
    assert moved.model_id.startswith("vgg19-facets-16-") and first.model_id.startswith("vgg19-gram-16-")
