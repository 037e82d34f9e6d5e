"""The shared helpers in `common/`: atomic writes and top-k."""

from __future__ import annotations

import numpy as np
import pytest

from common.atomic import atomic_write, atomic_write_bytes


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
