import numpy as np
import pytest
import torch

from transfer.projection import LinearProjection, fit_pca, random_projection


def _data(n=40, d=300, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, 8)) @ rng.normal(size=(8, d)) + rng.normal(0, 0.01, (n, d))).astype(np.float32)


def test_pca_keeps_the_variance_of_low_rank_data():
    x = _data()
    proj = fit_pca(x, dim=8)
    y = proj.transform(torch.from_numpy(x)).numpy()
    centred = x - x.mean(axis=0)
    assert y.shape == (40, 8)
    assert np.linalg.norm(y) ** 2 / np.linalg.norm(centred) ** 2 > 0.99


@pytest.mark.parametrize("make", [lambda x: fit_pca(x, 16), lambda x: random_projection(x.shape[1], 16, seed=3)])
def test_save_load_round_trip_is_exact(tmp_path, make):
    x = _data()
    proj = make(x)
    proj.save(tmp_path / "p.npz")
    loaded = LinearProjection.load(tmp_path / "p.npz")
    assert loaded.kind == proj.kind and loaded.fingerprint() == proj.fingerprint()
    torch.testing.assert_close(loaded.transform(torch.from_numpy(x)), proj.transform(torch.from_numpy(x)))


def test_fingerprint_tells_projections_apart():
    x = _data()
    assert fit_pca(x, 8).fingerprint() != fit_pca(x[:20], 8).fingerprint()
    assert random_projection(300, 8, seed=1).fingerprint() != random_projection(300, 8, seed=2).fingerprint()
    assert random_projection(300, 8, seed=1).fingerprint() == random_projection(300, 8, seed=1).fingerprint()


def test_too_few_samples_pad_with_zero_components():
    x = _data(n=5)
    proj = fit_pca(x, dim=16)
    y = proj.transform(torch.from_numpy(x)).numpy()
    assert y.shape == (5, 16)
    assert np.all(y[:, 4:] == 0) and np.any(y[:, :4] != 0)


def test_wrong_input_dimension_is_a_clear_error():
    proj = fit_pca(_data(), 8)
    with pytest.raises(ValueError, match="expects 300-d"):
        proj.transform(torch.zeros(2, 299))


def test_one_sample_cannot_fit_a_pca():
    with pytest.raises(ValueError, match="at least 2"):
        fit_pca(_data(n=1), 8)


@pytest.mark.parametrize("shape", [(40, 300), (300, 40)], ids=["fewer-images-than-dims", "more-images-than-dims"])
def test_pca_is_the_exact_pca_with_a_fixed_sign(shape):
    """Both solvers (the N x N Gram one for N <= D, scikit-learn's full one otherwise) give scikit-learn's exact
    components and variances; each component's largest weight is positive, so the matrix does not flip sign."""
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    x = (rng.normal(size=(shape[0], 12)) * np.linspace(4, 1, 12) @ rng.normal(size=(12, shape[1]))).astype(np.float32)
    x += rng.normal(0, 0.05, x.shape).astype(np.float32)
    proj = fit_pca(x, 6, power=0.5)
    exact = PCA(6, svd_solver="full").fit(x.astype(np.float64))
    matrix = proj.matrix.astype(np.float64)
    scale = (exact.explained_variance_ / exact.explained_variance_[0]) ** 0.5
    unscaled = matrix / scale[:, None]
    np.testing.assert_allclose(np.abs(np.sum(unscaled * exact.components_, axis=1)), 1.0, atol=2e-3)
    largest = matrix[np.arange(6), np.argmax(np.abs(matrix), axis=1)]
    assert np.all(largest > 0)
    np.testing.assert_allclose(proj.mean, exact.mean_, atol=1e-4)


def test_repeated_images_give_zero_components_not_infinite_ones():
    """Three distinct images, each four times: the centred data has rank 2, so two components and zeros (as for
    too few images), never the huge or NaN values a division by a zero variance would give."""
    x = np.repeat(_data(n=3), 4, axis=0)
    proj = fit_pca(x, 6)
    matrix = proj.matrix.astype(np.float32)
    assert np.all(np.isfinite(matrix))
    assert np.count_nonzero(np.abs(matrix).sum(axis=1) > 0) == 2
    y = proj.transform(torch.from_numpy(x)).numpy()
    assert np.all(np.isfinite(y)) and np.linalg.norm(y[:, :2]) > 0
