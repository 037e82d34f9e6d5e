"""The compact projection of raw Gram descriptors: fitted PCA (default) or a seeded sparse random projection.

Both are a `LinearProjection` y = (x - mean) @ matrix.T, so they are applied the same way on CPU or GPU and
saved in one small file format. Fitting follows scikit-learn (which does the maths).
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse
import torch
from sklearn.decomposition import PCA
from sklearn.random_projection import SparseRandomProjection
from threadpoolctl import threadpool_limits

from common.atomic import atomic_write
from common.errors import BadInput

log = logging.getLogger(__name__)


@dataclass
class LinearProjection:
    """y = (x - mean) @ matrix.T; `matrix` is dense (d, D) float16 for PCA or sparse CSR for random projection."""

    kind: str
    mean: np.ndarray  # (D,) float32
    matrix: np.ndarray | scipy.sparse.csr_matrix  # (d, D)
    _on_device: tuple | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def in_dim(self) -> int:
        return int(self.matrix.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.matrix.shape[0])

    def fingerprint(self) -> str:
        """Content hash of the projection (part of the embedding model id)."""
        h = hashlib.sha256(self.kind.encode())
        h.update(np.ascontiguousarray(self.mean).tobytes())
        if scipy.sparse.issparse(self.matrix):
            for part in (self.matrix.indptr, self.matrix.indices, self.matrix.data):
                h.update(np.ascontiguousarray(part).tobytes())
        else:
            h.update(np.ascontiguousarray(self.matrix).tobytes())
        return h.hexdigest()[:16]

    def transform(self, x: torch.Tensor, chunk: int = 32_768) -> torch.Tensor:
        """Project a (N, D) tensor on its own device; returns (N, d), float64 for a dense matrix on CPU, else float32.

        On CPU a dense projection sums in float64: a float32 sum over ~700k terms depends on how BLAS splits
        it (threads, batch size) in its last bits, and a vector must not depend on which batch or machine
        embedded it (the Ray path writes the same bits as the local one). The float16 components and
        float32 inputs multiply exactly in float64, so only the (tiny) rounding of the sum can differ. The
        float64 copy of the matrix is made `chunk` input dimensions at a time (67 MB), never whole: the
        resident matrix is the float16 one. That conversion is paid once per call, so callers that embed many
        images project them in groups (`embed_folder`: 64 at a time).
        """
        if x.shape[-1] != self.in_dim:
            raise ValueError(f"projection expects {self.in_dim}-d descriptors, got {x.shape[-1]}")
        if self._on_device is None or self._on_device[0] != x.device:
            self._on_device = (x.device, *self._tensors(x.device))
        _, mean, matrix = self._on_device
        if matrix.is_sparse_csr:
            return torch.sparse.mm(matrix, (x.to(torch.float32) - mean).t()).t()
        if x.device.type != "cpu":
            return (x.to(torch.float32) - mean) @ matrix.t().to(torch.float32)
        out = torch.zeros(len(x), self.out_dim, dtype=torch.float64)
        for first in range(0, self.in_dim, chunk):
            part = slice(first, first + chunk)
            centred = x[:, part].to(torch.float64) - mean[part].to(torch.float64)
            out += centred @ matrix[:, part].to(torch.float64).t()
        return out

    def _tensors(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.from_numpy(self.mean.astype(np.float32)).to(device)
        if scipy.sparse.issparse(self.matrix):
            m = self.matrix.tocsr().astype(np.float32)
            with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only sparse.mm
                warnings.simplefilter("ignore", UserWarning)
                matrix = torch.sparse_csr_tensor(
                    torch.from_numpy(m.indptr.astype(np.int64)),
                    torch.from_numpy(m.indices.astype(np.int64)),
                    torch.from_numpy(m.data),
                    size=m.shape,
                    check_invariants=True,
                ).to(device)
            return mean, matrix
        # Dense: the (d, D) matrix as stored (float16 from `fit_pca`; shared with the numpy array on CPU).
        return mean, torch.from_numpy(np.ascontiguousarray(self.matrix)).to(device)

    def save(self, path: str | os.PathLike) -> None:
        """Write to an .npz file (atomically: temporary file, fsync, rename)."""
        if scipy.sparse.issparse(self.matrix):
            m = self.matrix.tocsr()
            arrays = {"indptr": m.indptr, "indices": m.indices, "data": m.data, "shape": np.array(m.shape)}
        else:
            arrays = {"matrix": self.matrix}
        atomic_write(path, lambda f: np.savez(f, kind=np.array(self.kind), mean=self.mean, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike) -> LinearProjection:
        """Read a projection written by `save`."""
        with np.load(path, allow_pickle=False) as z:
            kind = str(z["kind"])
            if "matrix" in z:
                matrix = z["matrix"]
            else:
                matrix = scipy.sparse.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            return cls(kind=kind, mean=z["mean"], matrix=matrix)


def fit_pca(descriptors: np.ndarray, dim: int, seed: int = 0, power: float = 0.0) -> LinearProjection:
    """PCA to `dim` components on (N, D) descriptors, component i scaled by (variance_i / variance_1) ** power.

    `power` 0 is the plain PCA; -0.5 would whiten; a positive power leans further on the leading components
    (the spectral power of issue 16: 0.25 lifted texture retrieval, BENCHMARKS.md). With fewer than dim + 1
    samples the data has rank < dim: the missing components are zero (so the output still has `dim`
    dimensions) and a warning says so. Components are stored as float16; each component's sign makes its
    largest weight positive, so a refit on the same data gives the same matrix.

    The fit is exact. With fewer images than descriptor dimensions (always, for Gram descriptors: a few hundred
    or thousand images, ~300k dimensions) it eigendecomposes the images' N x N Gram matrix (the "snapshot" PCA),
    a few times faster than scikit-learn's randomized solver; otherwise scikit-learn's full solver. `seed` is kept
    for the signature (the fit draws nothing).
    """
    n, d = descriptors.shape
    if n < 2:
        raise BadInput(f"PCA needs at least 2 images to fit, got {n}; use projection='random' instead")
    n_components = min(dim, n - 1, d)
    if n_components < dim:
        log.warning("only %d images to fit a %d-d PCA: the last %d components are zero", n, dim, dim - n_components)
    # A threaded OpenBLAS can deadlock in the LU step when DataLoader workers were forked earlier in this
    # process (seen on 2-core machines); one BLAS thread costs seconds and never hangs.
    with threadpool_limits(1, "blas"):
        if n <= d:
            mean, components, variance = _snapshot_pca(np.asarray(descriptors, np.float32), n_components)
        else:
            pca = PCA(n_components=n_components, svd_solver="full", random_state=seed).fit(descriptors)
            mean, components, variance = pca.mean_, pca.components_, pca.explained_variance_
    signs = np.sign(components[np.arange(n_components), np.argmax(np.abs(components), axis=1)])
    components = components * np.where(signs == 0, 1, signs)[:, None]
    matrix = np.zeros((dim, d), dtype=np.float16)
    variance = np.maximum(variance, 0) / max(float(variance[0]), 1e-30)
    scale = variance**power if power else np.ones(n_components)
    matrix[:n_components] = (components * scale[:, None]).astype(np.float16)
    return LinearProjection("pca", np.asarray(mean, np.float32), matrix)


def _snapshot_pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean, the k leading principal axes (k, D) and their variances for N <= D samples, from the N x N Gram
    matrix of the centred samples (its eigenvectors v give the axes as v @ x / sqrt(eigenvalue))."""
    mean = x.mean(axis=0)
    centred = x - mean
    gram = (centred @ centred.T).astype(np.float64)
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    order = np.argsort(eigenvalues)[::-1][:k]
    eigenvalues = np.maximum(eigenvalues[order], 0.0)
    # directions without variance (repeated or too few images) are no axes: zero, like the components N cannot fit
    real = eigenvalues > max(float(eigenvalues[0]), 1e-30) * 1e-6
    eigenvalues[~real] = 0.0
    unit = np.zeros(len(order), np.float32)  # scales an axis v @ x to length 1
    unit[real] = 1.0 / np.sqrt(eigenvalues[real])
    axes = eigenvectors[:, order].T.astype(np.float32) @ centred
    axes *= unit[:, None]
    return mean, axes, eigenvalues / (x.shape[0] - 1)


def random_projection(in_dim: int, dim: int, seed: int = 0) -> LinearProjection:
    """A seeded sparse random projection (Achlioptas / Li et al.), for when no fit is wanted."""
    rp = SparseRandomProjection(n_components=dim, random_state=seed, dense_output=True)
    rp.fit(scipy.sparse.csr_matrix((1, in_dim), dtype=np.float32))
    return LinearProjection("random", np.zeros(in_dim, dtype=np.float32), rp.components_.tocsr())


def block_diagonal(first: LinearProjection, second: LinearProjection) -> LinearProjection:
    """One projection applying `first` to the leading `first.in_dim` inputs and `second` to the rest, outputs
    concatenated (the faceted embedding's pattern and colour projections, saved and applied as one)."""
    if first.kind != second.kind:
        raise ValueError(f"cannot join a {first.kind} and a {second.kind} projection")
    mean = np.concatenate([first.mean, second.mean]).astype(np.float32)
    if scipy.sparse.issparse(first.matrix):
        matrix = scipy.sparse.block_diag([first.matrix, second.matrix], format="csr", dtype=first.matrix.dtype)
    else:
        matrix = np.zeros((first.out_dim + second.out_dim, first.in_dim + second.in_dim), dtype=np.float16)
        matrix[: first.out_dim, : first.in_dim] = first.matrix
        matrix[first.out_dim :, first.in_dim :] = second.matrix
    return LinearProjection(first.kind, mean, matrix)
