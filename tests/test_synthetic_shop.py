"""The synthetic shop generator (benchmarks/synthetic_shop.py): seeded, H&M-shaped, readable by the importer."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.synthetic_shop import generate, shape_stats
from recsys.store.data_io import detect_format, read_catalog, read_interactions
from transfer.store import EmbeddingStore

SCALE = 0.002  # 2.7k shoppers, 211 articles, ~60k purchases


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    out = tmp_path_factory.mktemp("shop")
    generate(out, SCALE, seed=7, style_dim=32, progress=False)
    return out


def test_same_seed_same_files_other_seed_other_files(shop, tmp_path):
    generate(tmp_path / "again", SCALE, seed=7, style_dim=32, progress=False)
    for name in ("articles.csv", "transactions.csv", "style/embeddings.parquet"):
        assert (shop / name).read_bytes() == (tmp_path / "again" / name).read_bytes(), name
    generate(tmp_path / "other", SCALE, seed=8, style_dim=32, progress=False)
    assert (shop / "transactions.csv").read_bytes() != (tmp_path / "other" / "transactions.csv").read_bytes()


def test_the_importer_reads_it_and_every_article_has_a_style_vector(shop):
    assert detect_format(shop / "transactions.csv") == "hm"
    events = read_interactions(shop / "transactions.csv")
    catalog = read_catalog(shop)
    assert len(catalog) == 211 and catalog["item_id"].str.len().eq(10).all()
    assert set(events["item_id"]) <= set(catalog["item_id"])
    assert events["user_id"].nunique() == 2744 and events["price"].gt(0).all()
    assert {"product_code", "product_type_name", "section_name"} <= set(catalog["attributes"][0])
    # other colours of a product share its code, which is the start of the article id (the siblings source's rule)
    codes = catalog["attributes"].map(lambda a: a["product_code"])
    assert (catalog["item_id"].str[1:7] == codes).all() and codes.duplicated().any()
    store = EmbeddingStore.load(shop / "style")
    assert store.ids == list(catalog["item_id"]) and store.dim == 32
    assert np.allclose(np.linalg.norm(store.vectors, axis=1), 1.0, atol=1e-5)
    # clustered: an article's nearest neighbour is far closer than a random pair
    sims = store.vectors @ store.vectors.T
    np.fill_diagonal(sims, -1)
    assert np.median(sims.max(axis=1)) > np.median(sims) + 0.3


def test_shape_is_near_the_h_and_m_sample(shop, datasets):
    """Per shopper, basket and product the generated shop looks like the sample (catalog-size-free figures;
    repeats and popularity depend on how many articles a shop has, so they are not compared at this size)."""
    ours, sample = shape_stats(shop), shape_stats(datasets / "hm")
    keys = ["purchases_per_shopper", "purchases_per_shopper_median", "purchases_per_shopper_p90", "basket_size"]
    keys += ["basket_size_median", "baskets_per_shopper", "colours_per_product", "price_median", "summer_share"]
    for key in keys:
        assert ours[key] == pytest.approx(sample[key], rel=0.15), key
    assert 0.01 < ours["sibling_of_earlier_basket"] < 0.2
