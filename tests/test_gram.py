import numpy as np
import pytest
import torch

from transfer.gram import descriptor_size, gram_descriptor, masked_gram


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
