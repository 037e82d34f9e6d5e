"""The learned style head shipped in transfer/weights (issue 16)."""

import dataclasses

import numpy as np
import pytest
import torch

import transfer.encoder
from transfer.encoder import EncoderConfig, StyleEncoder
from transfer.gram import masked_gram
from transfer.head import DEFAULT_HEAD, load_head


def test_the_shipped_head_loads_with_its_version_and_orthonormal_nuisance_directions():
    head = load_head(DEFAULT_HEAD)
    assert head.version == "style-head-1" and len(head.sha256) == 64
    assert head.layers == ("relu2_1", "relu3_1", "relu4_1", "relu5_1")
    assert [p.shape for p in head.reductions] == [(64, 128), (64, 256), (64, 512), (64, 512)]
    assert head.raw_dim == 4 * 64 * 65 // 2 == head.nuisance.shape[1]
    u = head.nuisance.astype(np.float64)
    np.testing.assert_allclose(u @ u.T, np.eye(len(u)), atol=2e-3)  # float16 storage
    assert load_head(DEFAULT_HEAD) is head


def test_an_unknown_head_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown style head 'nope'"):
        EncoderConfig(head="nope")


def test_head_descriptors_are_reduced_grams_without_the_nuisance_directions():
    """P G P^T from the full Gram (how benchmarks/style_head.py scores) == the Gram of P f (how the product embeds)."""
    head = load_head(DEFAULT_HEAD)
    g = torch.Generator().manual_seed(0)
    feats = {
        name: torch.rand(2, p.shape[1], 6, 6, generator=g) for name, p in zip(head.layers, head.reductions, strict=True)
    }
    mask = torch.ones(2, 1, 6, 6)
    x = head.descriptors(feats, mask)
    assert x.shape == (2, head.raw_dim)
    assert float((x @ torch.from_numpy(head.nuisance).T).abs().max()) < 1e-4
    p = torch.from_numpy(head.reductions[2])
    reduced = p @ masked_gram(feats[head.layers[2]], mask) @ p.T
    direct = masked_gram(torch.nn.functional.conv2d(feats[head.layers[2]], p[:, :, None, None]), mask)
    torch.testing.assert_close(reduced, direct, rtol=1e-4, atol=1e-5)


def test_a_head_embedding_is_deterministic_and_its_version_is_in_the_model_id(monkeypatch):
    config = EncoderConfig(image_size=64, dim=8, head=DEFAULT_HEAD)
    assert config.layers == load_head(DEFAULT_HEAD).layers and config.raw_dim == load_head(DEFAULT_HEAD).raw_dim
    raw = np.random.default_rng(0).random((12, config.raw_dim), dtype=np.float32)
    encoder = StyleEncoder(config, device="cpu")
    encoder.fit_projection(raw)
    pixels = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    mask = torch.ones(3, 1, 64, 64)
    a, b = encoder.embed(pixels, mask), encoder.embed(pixels, mask)
    assert torch.equal(a, b)
    torch.testing.assert_close(a.norm(dim=1), torch.ones(3))
    model_id = encoder.model_id
    other = dataclasses.replace(load_head(DEFAULT_HEAD), sha256="another head")
    monkeypatch.setattr(transfer.encoder, "load_head", lambda version: other)
    assert encoder.model_id != model_id
