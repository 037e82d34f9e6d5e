"""The shared helpers in `common/`: atomic writes and top-k."""

from __future__ import annotations

import numpy as np
import pytest

from common.atomic import atomic_write, atomic_write_bytes
from common.topk import top_k


def test_atomic_write_replaces_the_file_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "data.bin"
    atomic_write_bytes(target, b"old")
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]


def test_a_writer_that_raises_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "data.bin"
    atomic_write_bytes(target, b"old contents")

    def half_then_fail(f):
        f.write(b"half of the new")
        raise OSError("disk on fire")

    with pytest.raises(OSError, match="disk on fire"):
        atomic_write(target, half_then_fail)
    assert target.read_bytes() == b"old contents"
    assert [p.name for p in tmp_path.iterdir()] == ["data.bin"]


def test_callback_form_works_with_numpy_writers(tmp_path):
    target = tmp_path / "arrays.npz"
    atomic_write(target, lambda f: np.savez(f, a=np.arange(3)))
    with np.load(target) as z:
        assert z["a"].tolist() == [0, 1, 2]
    assert [p.name for p in tmp_path.iterdir()] == ["arrays.npz"]


def _full_sort(scores: np.ndarray) -> list[int]:
    """The reference: every score sorted, best first, ties by position, NaN as -inf."""
    keyed = np.where(np.isnan(scores), -np.inf, scores)
    return sorted(range(len(scores)), key=lambda i: (-keyed[i], i))


@pytest.mark.parametrize("seed", range(5))
def test_top_k_agrees_with_a_full_sort_including_ties_and_nan(seed):
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, 20, 300).astype(np.float32)  # many ties
    scores[rng.choice(300, 15, replace=False)] = np.nan
    scores[rng.choice(300, 5, replace=False)] = -np.inf
    full = _full_sort(scores)
    for k in (1, 2, 7, 50, 299, 300, 301, 10_000):
        got = top_k(scores, k)
        assert got.dtype == np.int64
        assert got.tolist() == full[:k], k


def test_top_k_edges():
    assert top_k(np.array([3.0, 1.0, 2.0]), 0).tolist() == []
    assert top_k(np.array([3.0, 1.0, 2.0]), -4).tolist() == []
    assert top_k(np.zeros(0), 3).tolist() == []
    assert top_k(np.array([1, 5, 5, 0], dtype=np.uint8), 2).tolist() == [1, 2]
    assert top_k(np.array([np.nan, 1.0]), 2).tolist() == [1, 0]
    with pytest.raises(ValueError, match="1-D"):
        top_k(np.zeros((2, 2)), 1)
