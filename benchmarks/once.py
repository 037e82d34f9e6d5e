"""Issue 25 (once): what the shared helpers cost against the copies they replaced.

- top-k: `common.topk.top_k` against a full stable argsort (what `candidates/style.py` did) and against the old
  `argpartition` + sort of the head (no tie order), on n float32 scores;
- popularity: `Popularity` (DuckDB, `recsys.batch.tables.popularity_scores`) against the pandas count it replaced,
  on N synthetic events (string item ids, weights, timestamps over 200 days);
- atomic writes: `common.atomic.atomic_write_bytes` (temp file, fsync, rename, fsync of the folder) against a
  plain write + rename without fsync, for small files.

    PYTHONPATH=. python benchmarks/once.py [--events 1000000] [--scores 1000000] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from common.atomic import atomic_write_bytes
from common.topk import top_k
from recsys.models.hybrid import Popularity

DAY = 86400.0


def best_of(repeat: int, fn) -> float:
    """The fastest of `repeat` runs, in milliseconds (the least disturbed by a busy machine)."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(min(times) * 1000, 3)


def old_argpartition(scores: np.ndarray, k: int) -> np.ndarray:
    top = np.argpartition(-scores, k - 1)[:k]
    return top[np.argsort(-scores[top], kind="stable")]


def old_popularity(events: pd.DataFrame, half_life_days: float = 30.0) -> dict:
    weight = events["weight"].to_numpy(float)
    age = float(events["timestamp"].max()) - events["timestamp"].to_numpy(float)
    weight = weight * np.exp2(-age / (half_life_days * DAY))
    return pd.Series(weight, index=events["item_id"].to_numpy()).groupby(level=0).sum().to_dict()


def plain_write(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--scores", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--writes", type=int, default=200)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    out: dict = {"load_average": os.getloadavg()[0]}

    scores = rng.standard_normal(args.scores).astype(np.float32)
    for k in (10, 100, 1000):
        assert top_k(scores, k).tolist() == np.argsort(-scores, kind="stable")[:k].tolist()
        out[f"topk_n{args.scores}_k{k}_ms"] = {
            "common.topk": best_of(args.repeat, lambda k=k: top_k(scores, k)),
            "old argpartition": best_of(args.repeat, lambda k=k: old_argpartition(scores, k)),
            "full stable argsort": best_of(args.repeat, lambda: np.argsort(-scores, kind="stable")),
        }

    n_items = max(10, args.events // 100)
    events = pd.DataFrame(
        {
            "item_id": np.char.add("i", (rng.zipf(1.4, args.events) % n_items).astype(str)),
            "timestamp": rng.uniform(0, 200 * DAY, args.events).round(),
            "weight": rng.choice([1.0, 2.0], args.events),
        }
    )
    new, old = Popularity(events, 30.0).scores, old_popularity(events)
    assert new.keys() == old.keys() and all(abs(new[i] - old[i]) <= 1e-9 * max(1.0, old[i]) for i in old)
    out[f"popularity_{args.events}_events_ms"] = {
        "Popularity (DuckDB)": best_of(args.repeat, lambda: Popularity(events, 30.0)),
        "old pandas groupby": best_of(args.repeat, lambda: old_popularity(events)),
    }

    data = os.urandom(4096)
    with tempfile.TemporaryDirectory(dir=".") as folder:
        target = Path(folder) / "f.bin"
        atomic = best_of(1, lambda: [atomic_write_bytes(target, data) for _ in range(args.writes)])
        plain = best_of(1, lambda: [plain_write(target, data) for _ in range(args.writes)])
        per_write = {"atomic_write_bytes (fsync x2)": atomic, "write + rename, no fsync": plain}
    out["write_4KiB_ms_per_file"] = {name: round(ms / args.writes, 3) for name, ms in per_write.items()}
    out["load_average_after"] = os.getloadavg()[0]
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
