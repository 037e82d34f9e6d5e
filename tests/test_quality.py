"""Same-style retrieval on real labelled data: fails if the embedding stops separating styles."""

import shutil

import pytest

from transfer.encoder import EncoderConfig
from transfer.style_eval import style_eval

CLASSES = ("argyle", "dotted", "floral", "leopard", "striped", "tartan", "zebra", "paisley")


@pytest.fixture(scope="module")
def fashion_subset(datasets, tmp_path_factory):
    source = datasets / "fashion_texture"
    if not source.is_dir():
        pytest.skip(f"{source} not found")
    root = tmp_path_factory.mktemp("fashion_subset")
    for label in CLASSES:
        (root / label).mkdir()
        for path in sorted((source / label).glob("*.jpg"))[:15]:
            shutil.copy(path, root / label)
    return root


def test_gram_embedding_separates_clothing_patterns_and_beats_content(fashion_subset):
    """The default (faceted: grey, turned views + colour, weighed 3:1) separates real clothing patterns; the
    one-part Gram embedding (`gram-v2`, kept as an option) still beats the content feature. Measured here:
    default 0.359, gram-v2 0.391, content 0.375, colour-hist 0.142 (the facets cost a little on this colourful
    set and gain on DTD: BENCHMARKS.md, issue 22)."""
    methods = ("gram", "gram-v2", "gram-raw", "gram-v1", "content", "colour-hist")
    results = style_eval(fashion_subset, methods, EncoderConfig(image_size=128))
    gram, v2, raw, v1, content, hist = (results[m]["map@10"] for m in methods)
    assert results["gram"]["n"] == 120
    assert gram > 0.3, f"gram mAP@10 {gram:.3f}: the embedding no longer separates patterns (chance is ~0.1)"
    assert gram > 2 * hist, f"gram {gram:.3f} should far beat the colour histogram {hist:.3f}"
    assert gram >= 0.9 * v2, f"the facets cost too much: {gram:.3f} vs {v2:.3f} for the one-part embedding"
    assert v2 > content, f"style {v2:.3f} no longer beats the content feature {content:.3f} on patterns"
    assert v2 >= v1, f"the one-part default {v2:.3f} fell below the v1 embedding {v1:.3f}"
    assert v2 >= 0.97 * raw, f"the 256-d projection lost too much: {v2:.3f} vs {raw:.3f} uncompressed"
