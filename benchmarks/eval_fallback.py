"""`stylerec evaluate`'s `hybrid` on the H&M sample with a ranker that cannot learn (`min_shoppers` out of reach),
so the blend fallback ranks: run it on two commits and compare the JSON (issue 21, model contract).

    PYTHONPATH=$PWD python benchmarks/eval_fallback.py out.json
"""

from __future__ import annotations

import json
import sys

import pandas as pd

from recsys.evaluation.evaluate import EvalData, evaluate
from recsys.evaluation.splits import split
from recsys.models.ranker import RankerConfig
from recsys.store.data_io import read_catalog, read_interactions

HM = "/work/shared/datasets/hm"


def main(out: str) -> None:
    interactions = read_interactions(f"{HM}/transactions.csv")
    cutoff, end = pd.Timestamp("2020-06-10").timestamp(), pd.Timestamp("2020-07-31").timestamp()
    train, test = split(interactions, "temporal", 0.25, 42, cutoff, 1)
    test = test[test["timestamp"] < end]
    catalog = read_catalog(HM)
    data = EvalData(train, test, None, list(catalog["item_id"]), "temporal", 42, catalog, None)
    result = evaluate(data, 12, ["hybrid"], ranker_config=RankerConfig(windows=2, min_shoppers=10**6))
    with open(out, "w") as f:
        json.dump(result.as_json(), f)


if __name__ == "__main__":
    main(sys.argv[1])
