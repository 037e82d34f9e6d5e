import numpy as np
import pytest
import torch

from transfer.gram import (
    descriptor_size,
    gram_descriptor,
    masked_gram,
    masked_gram_root,
    per_thread_chunks,
    sqrtm_newton_schulz,
)


def naive_masked_gram(features: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Reference: loop over pixels, sum w * f f^T, divide by the sum of weights."""
    c, h, w = features.shape
    gram = np.zeros((c, c))
    for y in range(h):
        for x in range(w):
            f = features[:, y, x].astype(np.float64)
            gram += weights[y, x] * np.outer(f, f)
    return gram / weights.sum()


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("shape", [(2, 5, 6, 7), (5, 16, 4, 4)])  # the second: more images than threads, HW == C
@pytest.mark.parametrize("with_grad", [False, True])  # style losses differentiate through it
def test_masked_gram_matches_naive_reference(shape, channels_last, with_grad):
    rng = np.random.default_rng(0)
    feats = rng.random(shape).astype(np.float32)
    mask = (rng.random((shape[0], 1, *shape[2:])) > 0.4).astype(np.float32)
    x = torch.from_numpy(feats)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    got = masked_gram(x.requires_grad_(with_grad), torch.from_numpy(mask)).detach().numpy()
    for i in range(shape[0]):
        np.testing.assert_allclose(got[i], naive_masked_gram(feats[i], mask[i, 0]), rtol=1e-5)


def test_masked_gram_downsamples_a_full_resolution_mask_by_area():
    rng = np.random.default_rng(1)
    feats = rng.random((1, 3, 4, 4)).astype(np.float32)
    fine = np.zeros((1, 1, 8, 8), np.float32)
    fine[..., :4, :] = 1.0  # top half of the image -> top two feature rows
    got = masked_gram(torch.from_numpy(feats), torch.from_numpy(fine)).numpy()[0]
    coarse = np.zeros((4, 4))
    coarse[:2] = 1.0
    np.testing.assert_allclose(got, naive_masked_gram(feats[0], coarse), rtol=1e-5)


def test_pixels_outside_the_mask_do_not_count():
    rng = np.random.default_rng(2)
    feats = torch.from_numpy(rng.random((1, 4, 5, 5)).astype(np.float32))
    mask = torch.zeros(1, 1, 5, 5)
    mask[..., 1:4, 1:4] = 1
    changed = feats.clone()
    changed[..., 0, :] = 100.0  # background row
    torch.testing.assert_close(masked_gram(feats, mask), masked_gram(changed, mask))
    assert not torch.allclose(masked_gram(feats, torch.ones_like(mask)), masked_gram(changed, torch.ones_like(mask)))


def test_descriptor_is_signed_sqrt_of_upper_triangle_unit_norm():
    gram = torch.tensor([[[4.0, -9.0], [-9.0, 16.0]]])
    got = gram_descriptor(gram)[0]
    expected = torch.tensor([2.0, -3.0, 4.0])
    torch.testing.assert_close(got, expected / expected.norm())


def test_five_layer_descriptor_size():
    assert descriptor_size([64, 128, 256, 512, 512]) == 305_888


def test_channels_last_maps_give_the_same_gram():
    feats = torch.rand(2, 8, 6, 5)
    mask = (torch.rand(2, 1, 12, 10) > 0.3).float()
    cl = feats.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(masked_gram(cl, mask), masked_gram(feats, mask))


def _eigen_sqrt(gram: torch.Tensor) -> torch.Tensor:
    """Reference: V diag(sqrt(max(lambda, 0))) V^T in float64."""
    values, vectors = torch.linalg.eigh(gram.double())
    return (vectors * values.clamp_min(0).sqrt()[:, None, :]) @ vectors.transpose(1, 2)


def test_newton_schulz_square_root_matches_the_eigendecomposition():
    rng = np.random.default_rng(3)
    feats = torch.from_numpy(rng.normal(size=(4, 24, 200)).astype(np.float32))
    gram = feats @ feats.transpose(1, 2) / 200  # well conditioned: eigenvalues roughly 0.4..1.8
    root = sqrtm_newton_schulz(gram, iterations=20)
    torch.testing.assert_close(root.double(), _eigen_sqrt(gram), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(root @ root, gram, rtol=1e-4, atol=1e-5)


def test_few_newton_schulz_iterations_keep_the_leading_eigen_directions():
    """The shipped 5 iterations are an approximate root: the dominant directions are exact, small ones damped."""
    rng = np.random.default_rng(4)
    feats = torch.from_numpy(np.abs(rng.normal(size=(3, 32, 100))).astype(np.float32))  # ReLU-like: rank-deficient
    gram = feats @ feats.transpose(1, 2) / 100
    root, exact = sqrtm_newton_schulz(gram, iterations=5).double(), _eigen_sqrt(gram)
    vectors = torch.linalg.eigh(gram.double()).eigenvectors
    top = vectors[:, :, -1:]
    torch.testing.assert_close(top.transpose(1, 2) @ root @ top, top.transpose(1, 2) @ exact @ top, rtol=1e-3, atol=0)
    assert float((root - exact).norm() / exact.norm()) < 0.35


def test_matrix_root_of_zero_and_scale_equivariance():
    assert torch.equal(sqrtm_newton_schulz(torch.zeros(2, 5, 5)), torch.zeros(2, 5, 5))
    gram = torch.tensor([[[4.0, 1.0], [1.0, 3.0]]])
    torch.testing.assert_close(sqrtm_newton_schulz(9 * gram), 3 * sqrtm_newton_schulz(gram))


def test_descriptor_of_a_matrix_root_is_its_unit_upper_triangle():
    root = torch.tensor([[[2.0, 0.0], [0.0, 3.0]]])
    torch.testing.assert_close(gram_descriptor(root, signed_sqrt=False)[0], torch.tensor([2.0, 0.0, 3.0]) / 13**0.5)


@pytest.mark.parametrize("shape", [(3, 48, 4, 5), (3, 8, 4, 5)])  # fewer positions than channels (the P x P path)
@pytest.mark.parametrize("iterations", [3, 5, 8])  # few: Z grows like 1.5^k on a rank-deficient kernel
def test_masked_gram_root_is_the_newton_schulz_root_of_the_masked_gram(shape, iterations):
    rng = np.random.default_rng(5)
    feats = torch.from_numpy(np.maximum(rng.normal(size=shape), 0).astype(np.float32)).contiguous(
        memory_format=torch.channels_last
    )
    mask = torch.from_numpy((rng.random((shape[0], 1, 8, 10)) > 0.3).astype(np.float32))
    gram = masked_gram(feats, mask)
    got = masked_gram_root(feats, mask, iterations)
    torch.testing.assert_close(got, sqrtm_newton_schulz(gram, iterations), rtol=1e-3, atol=1e-4)
    if shape[1] < shape[2] * shape[3]:  # the C x C path converges to the exact root
        torch.testing.assert_close(masked_gram_root(feats, mask, 30).double(), _eigen_sqrt(gram), rtol=1e-3, atol=1e-4)


def test_per_thread_chunks_give_each_row_the_same_bits_whatever_the_batch():
    gram = torch.rand(5, 64, 300) @ torch.rand(5, 300, 64) / 300
    together = per_thread_chunks(lambda g: sqrtm_newton_schulz(g, 5), gram)
    alone = torch.cat([per_thread_chunks(lambda g: sqrtm_newton_schulz(g, 5), gram[i : i + 1]) for i in range(5)])
    assert torch.equal(together, alone)
