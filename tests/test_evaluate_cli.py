"""`stylerec evaluate`, `import` and `feed`: the command shapes automation depends on, on real and demo data."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from recsys.cli import main

KEYS = {"precision@{k}", "recall@{k}", "ndcg@{k}", "map@{k}", "hitrate@{k}", "coverage", "cold_recall@{k}"}


def _keys(k: int) -> set[str]:
    return {key.format(k=k) for key in KEYS}


def test_movielens_random_split_reaches_the_published_bar(datasets, tmp_path, capsys):
    args = ["evaluate", "--data", str(datasets / "ml-100k" / "ml-100k.inter"), "--split", "random"]
    args += ["--test-size", "0.25", "--seed", "42", "--k", "10", "--models", "cf", "--json"]
    assert main([*args, "--report", str(tmp_path / "report")]) == 0
    result = json.loads(capsys.readouterr().out)
    cf = result["models"]["cf"]
    assert _keys(10) <= set(cf)
    assert cf["precision@10"] >= 0.388 and cf["ndcg@10"] >= 0.442  # Microsoft Recommenders' BPR row
    assert (tmp_path / "report" / "report.md").exists() and (tmp_path / "report" / "metric_vs_k.png").exists()


def test_train_test_files_with_a_catalog_and_unknown_users(demo_shop, tmp_path, capsys):
    catalog_dir, embeddings, _ = demo_shop
    events = pd.read_csv(catalog_dir / "interactions.csv", dtype={"user_id": str, "item_id": str})
    cutoff = events["timestamp"].quantile(0.85)
    train, test = events[events["timestamp"] < cutoff], events[events["timestamp"] >= cutoff]
    stranger = pd.DataFrame([{"user_id": "never-seen", "item_id": "D0001", "timestamp": cutoff + 1, "weight": 1.0}])
    train.to_csv(tmp_path / "train.csv", index=False)
    pd.concat([test, stranger]).to_parquet(tmp_path / "test.parquet")
    args = ["evaluate", "--train", str(tmp_path / "train.csv"), "--test", str(tmp_path / "test.parquet")]
    args += ["--catalog", str(catalog_dir), "--embeddings", str(embeddings), "--k", "12"]
    args += ["--models", "popularity,cf,style,hybrid", "--windows", "3", "--json", "--report", str(tmp_path / "report")]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["models"]) == {"popularity", "cf", "style", "hybrid"}
    for metrics in result["models"].values():
        assert _keys(12) <= set(metrics)
    assert result["data"]["test_users_unknown_in_train"] == 1
    assert result["models"]["cf"]["cold_recall@12"] == 0.0
    assert result["models"]["style"]["cold_recall@12"] > 0
    report = (tmp_path / "report" / "report.md").read_text()
    assert "| hybrid |" in report and "feature_gain.png" in report
    assert result["hybrid"]["hybrid"]["learned"] and result["comparisons"]
    assert result["models"]["hybrid"]["ndcg@12_ci"][0] <= result["models"]["hybrid"]["ndcg@12"]


def test_hm_transactions_temporal_split(datasets, tmp_path, capsys):
    args = ["evaluate", "--data", str(datasets / "hm" / "transactions.csv"), "--split", "temporal"]
    args += ["--cutoff", "2020-07-01", "--k", "12", "--models", "popularity,cf", "--json"]
    assert main([*args, "--report", str(tmp_path)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["data"]["test_interactions"] == 1589  # purchases in July 2020
    assert result["models"]["popularity"]["recall@12"] > 0


def test_evaluate_errors(tmp_path, capsys):
    assert main(["evaluate", "--k", "5"]) == 2
    assert "give --data FILE" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,item_id,weight\nu1,a,1\nu1,b,zero\n")
    assert main(["evaluate", "--data", str(bad)]) == 2
    assert "line 3: weight must be a number > 0" in capsys.readouterr().err
    good = tmp_path / "good.csv"
    good.write_text("user_id,item_id\n" + "".join(f"u{n % 5},i{n % 7}\n" for n in range(40)))
    assert main(["evaluate", "--data", str(good), "--models", "cf,magic"]) == 2
    assert "unknown model(s) magic" in capsys.readouterr().err


def test_import_then_feed(demo_shop, tmp_path, capsys):
    catalog_dir, embeddings, _ = demo_shop
    db = str(tmp_path / "shop.db")
    args = ["import", "--db", db, "--catalog", str(catalog_dir)]
    args += ["--interactions", str(catalog_dir / "interactions.csv")]
    assert main(args) == 0
    assert "288 written" in capsys.readouterr().out
    assert main(args) == 0
    assert "already imported" in capsys.readouterr().out
    assert main(["feed", "U0005", "--db", db, "--store", str(embeddings), "-k", "4", "--json"]) == 0
    feed = json.loads(capsys.readouterr().out)
    assert len(feed) == 4 and all({"item_id", "score", "reason"} <= set(r) for r in feed)
    assert main(["feed", "U0005", "--db", str(tmp_path / "none.db")]) == 2
    assert "no store" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["import", "--db", db, "--format", "nope"])
