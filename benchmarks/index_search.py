"""Style index benchmark: build time, memory, recall@10 vs exact, single-query p50/p99, batch QPS.

    python benchmarks/index_search.py [--sizes 10000,100000,1000000] [--dim 256] [--queries 1000]

Vectors: a clustered distribution shaped like style embeddings (many clusters, each spread over a low-dimensional
subspace, plus isotropic noise), L2-normalised. Queries are drawn from the same distribution (not in the index).
For each size, `auto` and exact `Flat` are measured in the same run, so the QPS ratio is meaningful.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import faiss
import numpy as np

from index.style_index import StyleIndex


def clustered(n: int, dim: int, clusters: int = 2000, latent: int = 16, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim)).astype(np.float32)
    bases = rng.normal(size=(clusters, latent, dim)).astype(np.float32) / np.sqrt(latent)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 20_000):
        stop = min(n, start + 20_000)
        c = rng.integers(0, clusters, stop - start)
        z = rng.normal(size=(stop - start, 1, latent)).astype(np.float32)
        spread = (z @ bases[c])[:, 0]
        out[start:stop] = centres[c] + spread + 0.3 * rng.normal(size=(stop - start, dim)).astype(np.float32)
    faiss.normalize_L2(out)
    return out


def measure(index: StyleIndex, queries: np.ndarray, truth: np.ndarray, ids: np.ndarray, k: int = 10) -> dict:
    single = []
    for q in queries[:300]:
        t = time.perf_counter()
        index.search(q, k)
        single.append(time.perf_counter() - t)
    t = time.perf_counter()
    found, _ = index.search(queries, k)
    batch_s = time.perf_counter() - t
    truth_sets = [set(ids[row]) for row in truth]
    recall = np.mean([len(set(f) & t) / k for f, t in zip(found, truth_sets, strict=True)])
    return {
        "recall@10": round(float(recall), 4),
        "p50_ms": round(1000 * float(np.percentile(single, 50)), 3),
        "p99_ms": round(1000 * float(np.percentile(single, 99)), 3),
        "batch_qps": round(len(queries) / batch_s, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--gpu", action="store_true", help="search on the GPU (needs a FAISS GPU build)")
    args = parser.parse_args()

    rows = []
    for n in (int(s) for s in args.sizes.split(",")):
        data = clustered(n + args.queries, args.dim, seed=n)
        vectors, queries = data[:n], data[n:]
        ids = np.array([f"item-{i}" for i in range(n)])
        _, truth = faiss.knn(queries, vectors, 10, metric=faiss.METRIC_INNER_PRODUCT)
        for spec in ("auto", "Flat"):
            started = time.perf_counter()
            index = StyleIndex.build(vectors, ids.tolist(), spec=spec, use_gpu=args.gpu)
            build_s = time.perf_counter() - started
            memory_mb = len(faiss.serialize_index(index._state.index)) / 2**20
            row = {
                "n": n,
                "spec": index.spec,
                "params": index.info()["params"],
                "build_s": round(build_s, 1),
                "index_mb": round(memory_mb, 1),
                **measure(index, queries, truth, ids),
            }
            print(json.dumps(row), flush=True)
            rows.append(row)
            del index
    cpu = platform.processor() or platform.machine()
    machine = f"{cpu}, faiss {faiss.__version__}, {faiss.omp_get_max_threads()} threads"
    print(json.dumps({"machine": machine, "device": "gpu" if args.gpu else "cpu"}))
    print("\n| n | spec | params | build s | index MB | recall@10 | p50 ms | p99 ms | batch QPS |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']:,} | {r['spec']} | {r['params'] or ''} | {r['build_s']} | {r['index_mb']} | "
            f"{r['recall@10']} | {r['p50_ms']} | {r['p99_ms']} | {r['batch_qps']:,} |"
        )


if __name__ == "__main__":
    main()
