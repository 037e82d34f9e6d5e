import threading

import numpy as np
import pytest

from index import persistence
from index.persistence import IndexFileError
from index.style_index import StyleIndex, auto_spec


def clustered(n: int, dim: int = 32, clusters: int = 50, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.5 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(x: np.ndarray, ids: list[str], queries: np.ndarray, k: int, allow=None):
    rows = np.arange(len(x)) if allow is None else np.array([ids.index(i) for i in allow])
    scores = queries @ x[rows].T
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [[ids[rows[j]] for j in row] for row in top], np.take_along_axis(scores, top, axis=1)


def recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)])


_ALL = clustered(3040)
X, QUERIES = _ALL[:3000], _ALL[3000:]  # queries: held out, from the same distribution
IDS = [f"item-{i:05d}" for i in range(len(X))]


def test_auto_spec_follows_size():
    assert auto_spec(10_000, 256) == "Flat"
    assert auto_spec(50_000, 256) == "Flat"
    assert auto_spec(1_000_000, 256) == "IVF4096,Flat"
    assert auto_spec(20_000_000, 256).endswith(",PQ64")


def test_exact_index_matches_numpy():
    index = StyleIndex.build(X, IDS, spec="auto")
    assert index.spec == "Flat"
    ids, scores = index.search(QUERIES, 10)
    truth_ids, truth_scores = brute_force(X, IDS, QUERIES, 10)
    assert ids == truth_ids
    np.testing.assert_allclose(scores, truth_scores, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spec", ["IVF32,Flat", "HNSW16", "IVF32,PQ8"])
def test_approximate_specs_are_tuned_to_the_recall_target(spec):
    index = StyleIndex.build(X, IDS, spec=spec, target_recall=0.95)
    ids, _ = index.search(QUERIES, 10)
    truth, _ = brute_force(X, IDS, QUERIES, 10)
    floor = 0.45 if "PQ" in spec else 0.9  # 4-d PQ codes are lossy whatever nprobe (random: ~0.003)
    assert recall(ids, truth) >= floor, index.info()
    assert index.info()["params"], "approximate indexes carry a tuned search parameter"


def test_tuning_picks_the_cheapest_setting_that_meets_the_target():
    easy = clustered(4000, clusters=20, seed=3)  # tight, well separated clusters: few lists suffice
    ids = [str(i) for i in range(len(easy))]
    index = StyleIndex.build(easy, ids, spec="IVF64,Flat", target_recall=0.9)
    nprobe = index.info()["params"]["nprobe"]
    assert nprobe < 64, "a full scan means the tuning never saw its target reached"
    found, _ = index.search(easy[:200], 11)
    truth, _ = brute_force(easy, ids, easy[:200], 11)
    assert recall(found, truth) >= 0.85


@pytest.mark.parametrize("spec", ["Flat", "IVF32,Flat"])
def test_allow_list_gives_the_true_top_k_among_allowed_items(spec):
    index = StyleIndex.build(X, IDS, spec=spec)
    allow = [*IDS[::37], "not-in-the-index"]
    ids, _ = index.search(QUERIES, 5, allow=allow)
    truth, _ = brute_force(X, IDS, QUERIES, 5, allow=allow[:-1])
    assert all(set(row) <= set(allow) for row in ids)
    assert recall(ids, truth) >= 0.95


@pytest.mark.parametrize("spec", ["Flat", "IVF32,Flat"])
def test_excluded_items_never_come_back_and_k_is_still_met(spec):
    """`exclude` (a shopper's purchases) leaves those items out inside the search: k results of the rest, the
    same as an allow-list of everything else, alone or together with an allow-list."""
    index = StyleIndex.build(X, IDS, spec=spec)
    truth, _ = index.search(QUERIES, 20)
    exclude = [i for row in truth for i in row[::2]] + ["not-in-the-index"]  # half of every query's top 20
    rest = sorted(set(IDS) - set(exclude))
    ids, _ = index.search(QUERIES, 10, exclude=exclude)
    assert all(len(row) == 10 and not set(row) & set(exclude) for row in ids)
    exact, _ = brute_force(X, IDS, QUERIES, 10, allow=rest)
    assert ids == exact if spec == "Flat" else recall(ids, exact) >= 0.95
    allow = IDS[::3]
    both, _ = index.search(QUERIES, 5, allow=allow, exclude=exclude)
    assert all(set(row) <= set(allow) - set(exclude) and len(row) == 5 for row in both)


def test_allow_list_with_nothing_allowed_returns_nothing():
    index = StyleIndex.build(X, IDS)
    ids, scores = index.search(QUERIES[:2], 5, allow=["nope"])
    assert ids == [[], []] and scores == [[], []]


@pytest.mark.parametrize("spec", ["Flat", "IVF32,Flat"])
def test_add_remove_upsert(spec):
    index = StyleIndex.build(X[:2000], IDS[:2000], spec=spec)
    index.add(X[2000:2100], IDS[2000:2100])
    assert len(index) == 2100
    assert index.search(X[2050], 1)[0][0] == [IDS[2050]]
    with pytest.raises(ValueError, match="already in the index"):
        index.add(X[:1], IDS[:1])

    assert index.remove(IDS[2050:2060]) == 10
    assert len(index) == 2090 and IDS[2050] not in index
    assert IDS[2050] not in index.search(X[2050], 20)[0][0]
    with pytest.raises(KeyError, match="unknown item id"):
        index.remove(["never-added"])

    index.upsert(X[2999:3000], [IDS[5]])  # item 5 now looks like item 2999
    assert index.search(X[2999], 1)[0][0] == [IDS[5]]
    assert len(index) == 2090


def test_bad_shapes_and_values():
    index = StyleIndex.build(X, IDS)
    with pytest.raises(ValueError, match="shape"):
        index.search(np.zeros((2, 31), np.float32), 3)
    with pytest.raises(ValueError, match="NaN"):
        index.search(np.full(32, np.nan, np.float32), 3)
    with pytest.raises(ValueError, match="ids for"):
        StyleIndex.build(X[:3], IDS[:2])
    with pytest.raises(ValueError, match="factory string"):
        StyleIndex.build(X, IDS, spec="NotAnIndex42")


def test_save_load_round_trip(tmp_path):
    index = StyleIndex.build(X, IDS, spec="IVF32,Flat", model_id="vgg19-gram-32-abc")
    index.remove(IDS[:3])
    index.save(tmp_path / "idx")
    loaded = StyleIndex.load(tmp_path / "idx", model_id="vgg19-gram-32-abc")
    assert loaded.info() == index.info()
    assert loaded.search(QUERIES, 10) == index.search(QUERIES, 10)
    loaded.add(X[:1], ["new-item"])  # labels continue after the saved ones: no clash with removed ids
    assert loaded.search(X[0], 1)[0][0] == ["new-item"]


def test_the_fingerprint_names_the_persisted_version_until_the_index_changes(tmp_path):
    index = StyleIndex.build(X, IDS, spec="Flat")
    assert index.fingerprint is None  # built in memory, never saved
    index.save(tmp_path / "idx")
    loaded = StyleIndex.load(tmp_path / "idx")
    assert loaded.fingerprint == index.fingerprint is not None
    loaded.upsert(X[:1], ["new-item"])
    assert loaded.fingerprint is None
    loaded.save(tmp_path / "idx")
    again = StyleIndex.load(tmp_path / "idx")
    assert again.fingerprint == loaded.fingerprint not in (None, index.fingerprint)
    again.remove(["new-item"])
    assert again.fingerprint is None


def test_load_refuses_another_model(tmp_path):
    StyleIndex.build(X, IDS, model_id="model-a").save(tmp_path / "idx")
    with pytest.raises(IndexFileError, match="model-a"):
        StyleIndex.load(tmp_path / "idx", model_id="model-b")


def test_load_refuses_corrupt_files(tmp_path):
    version = StyleIndex.build(X, IDS).save(tmp_path / "idx")
    data = bytearray((version / "index.faiss").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (version / "index.faiss").write_bytes(bytes(data))
    with pytest.raises(IndexFileError, match="checksum"):
        StyleIndex.load(tmp_path / "idx")
    (version / "manifest.json").write_text("{ not json")
    with pytest.raises(IndexFileError, match="unreadable"):
        StyleIndex.load(tmp_path / "idx")
    with pytest.raises(IndexFileError, match="no index"):
        StyleIndex.load(tmp_path / "empty")


def test_interrupted_save_leaves_the_previous_version_loadable(tmp_path, monkeypatch):
    StyleIndex.build(X[:100], IDS[:100]).save(tmp_path / "idx")
    bigger = StyleIndex.build(X, IDS)
    real_replace = persistence.os.replace

    def crash_on_current(src, dst):
        if str(dst).endswith("CURRENT"):
            raise KeyboardInterrupt("killed while saving")
        return real_replace(src, dst)

    monkeypatch.setattr(persistence.os, "replace", crash_on_current)
    with pytest.raises(KeyboardInterrupt):
        bigger.save(tmp_path / "idx")
    monkeypatch.setattr(persistence.os, "replace", real_replace)
    assert len(StyleIndex.load(tmp_path / "idx")) == 100
    bigger.save(tmp_path / "idx")  # the next save goes through and cleans up
    assert len(StyleIndex.load(tmp_path / "idx")) == 3000


def test_searches_keep_answering_during_a_rebuild():
    index = StyleIndex.build(X[:1000], IDS[:1000])
    errors, answered = [], [0]
    stop = threading.Event()

    def searcher():
        while not stop.is_set():
            try:
                ids, _ = index.search(QUERIES[:4], 5)
                assert all(len(row) == 5 for row in ids)
                answered[0] += 1
            except Exception as exc:  # pragma: no cover - reported below
                errors.append(exc)

    threads = [threading.Thread(target=searcher) for _ in range(2)]
    for t in threads:
        t.start()
    index.rebuild(X, IDS, spec="IVF32,Flat")
    index.add(X[:1], ["extra"])
    stop.set()
    for t in threads:
        t.join()
    assert not errors and answered[0] > 0
    assert len(index) == 3001 and index.spec == "IVF32,Flat"


def test_gpu_search_agrees_with_cpu():
    faiss = pytest.importorskip("faiss")
    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() == 0:
        pytest.skip("no CUDA GPU with a FAISS GPU build")
    cpu = StyleIndex.build(X, IDS, use_gpu=False)
    gpu = StyleIndex.build(X, IDS, use_gpu=True)
    assert gpu.info()["device"] == "gpu"
    cpu_ids, cpu_scores = cpu.search(QUERIES, 10)
    gpu_ids, gpu_scores = gpu.search(QUERIES, 10)
    np.testing.assert_allclose(gpu_scores, cpu_scores, atol=1e-4)
    assert recall(gpu_ids, cpu_ids) > 0.99


def test_sharded_index_answers_like_one_index(tmp_path):
    from index.sharded import ShardedStyleIndex

    single = StyleIndex.build(X, IDS)
    sharded = ShardedStyleIndex.build(X, IDS, shards=3)
    assert len(sharded) == 3000 and all(800 < len(s) < 1200 for s in sharded.shards)
    assert sharded.search(QUERIES, 10)[0] == single.search(QUERIES, 10)[0]
    allow = IDS[::11]
    assert sharded.search(QUERIES, 5, allow=allow)[0] == single.search(QUERIES, 5, allow=allow)[0]
    assert sharded.search(QUERIES, 5, exclude=allow)[0] == single.search(QUERIES, 5, exclude=allow)[0]

    sharded.remove(IDS[:10])
    sharded.upsert(X[:1], ["fresh"])
    assert len(sharded) == 2991 and "fresh" in sharded and IDS[0] not in sharded
    sharded.save(tmp_path / "sharded")
    loaded = ShardedStyleIndex.load(tmp_path / "sharded")
    assert loaded.search(QUERIES, 10) == sharded.search(QUERIES, 10)


def test_an_index_that_cannot_remove_says_so_and_stays_consistent():
    index = StyleIndex.build(X[:500], IDS[:500], spec="HNSW16")
    with pytest.raises(ValueError, match="does not support removal"):
        index.remove(IDS[:2])
    with pytest.raises(ValueError, match="does not support removal"):
        index.upsert(X[:1], IDS[:1])
    assert len(index) == 500 and IDS[0] in index
    assert index.search(X[0], 1)[0][0] == [IDS[0]]


def test_a_batch_with_a_repeated_id_changes_nothing():
    index = StyleIndex.build(X[:100], IDS[:100], spec="IVF8,Flat")
    with pytest.raises(ValueError, match="twice"):
        index.upsert(X[:2], [IDS[0], IDS[0]])
    assert len(index) == 100 and index.search(X[0], 1)[0][0] == [IDS[0]]


def test_similar_leaves_out_the_query_item_and_still_returns_k():
    index = StyleIndex.build(X, IDS)
    results = index.similar(X[7], 5, exclude=IDS[7])
    truth, _ = brute_force(X, IDS, X[7:8], 6)
    assert [i for i, _ in results] == truth[0][1:]
    assert index.similar(X[7], 1)[0][0] == IDS[7]
