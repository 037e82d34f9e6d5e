"""A seeded generator of H&M-shaped shops at any size, for measuring stylerec at scale.

`--scale 1` is H&M's Kaggle release (31.8M purchases, 1.37M shoppers, 105.5k articles, two years); `--scale 0.01`
a hundredth of it. The shape comes from the H&M sample in `shared/datasets/hm` (measured with `--measure`; the
figures are the constants below, so a shop does not depend on the sample being present):

- baskets per shopper 1 + NegBin(mean 5.19, r 0.34) (sample: mean 6.2, median 3), items per basket
  1 + NegBin(mean 2.63, r 0.6) (sample: mean 3.6, median 2, p90 8): 22.5 purchases per shopper;
- 10% of purchases repeat the basket's previous article (H&M counts each unit), 4% buy again an article of an
  earlier basket, 3.5% another colour of an earlier product; the rest follow the shopper's two style clusters
  (60%) or the shop's best sellers of the week (40%);
- 1.76 colours per product (`product_code`, article id = 0 + code + colour), product types and sections with
  the sample's frequencies, prices lognormal around the sample's median 0.025 (15% paid at a 30% discount);
- power-law appeal (Pareto), launches spread over the two years (a third of the range before the first day),
  sales fading after launch (weeks), summer and winter products, the sample's month and weekday volumes.

Writes the H&M Kaggle layout that `stylerec import --catalog DIR --interactions DIR/transactions.csv` reads
(`articles.csv`, `transactions.csv`; no images) and, with `--style-dim` > 0, an embedding store in `DIR/style/`
(`embeddings.parquet`, `encoder.json`, `projection.npz`) with clustered unit vectors for every article under a
synthetic model id. Transactions are generated and written in fixed chunks of shoppers, so memory is bounded by
the catalog's weekly sales tables (~2 x 105 weeks x articles float64), not by the events; the same seed and
scale give the same bytes.

    python benchmarks/synthetic_shop.py --scale 0.01 --out /tmp/shop001
    python benchmarks/synthetic_shop.py --measure /work/shared/datasets/hm     # the sample's shape
    python benchmarks/synthetic_shop.py --measure /tmp/shop001                 # a generated shop's
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

HM_PURCHASES, HM_SHOPPERS, HM_ARTICLES = 31_788_324, 1_371_980, 105_542
START = np.datetime64("2018-09-20")
DAYS = 734  # 2018-09-20 .. 2020-09-22, the Kaggle release's range
WEEKS = DAYS // 7 + 1
CHUNK = 20_000  # shoppers per generated chunk (fixed: the output must not depend on memory settings)

BASKETS_MEAN, BASKETS_R = 5.19, 0.344  # baskets per shopper: 1 + NegBin
BASKET_MEAN, BASKET_R = 2.63, 0.6  # items per basket: 1 + NegBin
P_DUPLICATE, P_REPEAT, P_SIBLING, P_TASTE = 0.08, 0.01, 0.03, 0.5
COLOURS_MEAN = 1.76
PRICE_MEDIAN, PRICE_SIGMA, P_DISCOUNT = 0.028, 0.55, 0.15
P_ONLINE = 0.712  # sales_channel_id 2
APPEAL_ALPHA = 1.8  # Pareto tail of an article's appeal
FADE_WEEKS = 16.0  # median weeks for a launch's sales to fall by e
STYLE_CLUSTERS = 48
MONTH_WEIGHTS = np.array([0.080, 0.068, 0.080, 0.094, 0.108, 0.115, 0.114, 0.048, 0.060, 0.085, 0.075, 0.074])
WEEKDAY_WEIGHTS = np.array([0.133, 0.122, 0.156, 0.156, 0.146, 0.151, 0.137])
# (product_type_name, product_group_name, garment_group_name, products in the sample): its 41 commonest types
PRODUCT_TYPES = [
    ("Dress", "Garment Full body", "Dresses Ladies", 460), ("Trousers", "Garment Lower body", "Trousers", 389),
    ("Sweater", "Garment Upper body", "Knitwear", 298), ("Blouse", "Garment Upper body", "Blouses", 290),
    ("Top", "Garment Upper body", "Jersey Fancy", 222), ("Jacket", "Garment Upper body", "Outdoor", 220),
    ("Dress", "Garment Full body", "Jersey Fancy", 170), ("Bra", "Underwear", "Under-, Nightwear", 167),
    ("Earring", "Accessories", "Accessories", 160), ("Underwear bottom", "Underwear", "Under-, Nightwear", 159),
    ("Trousers", "Garment Lower body", "Trousers Denim", 157), ("T-shirt", "Garment Upper body", "Jersey Fancy", 154),
    ("Skirt", "Garment Lower body", "Skirts", 141), ("Sweater", "Garment Upper body", "Jersey Fancy", 128),
    ("Dress", "Garment Full body", "Blouses", 120), ("Shirt", "Garment Upper body", "Blouses", 100),
    ("Boots", "Shoes", "Shoes", 89), ("Bikini top", "Swimwear", "Swimwear", 88),
    ("T-shirt", "Garment Upper body", "Jersey Basic", 87), ("Necklace", "Accessories", "Accessories", 86),
    ("Swimwear bottom", "Swimwear", "Swimwear", 85), ("Cardigan", "Garment Upper body", "Knitwear", 80),
    ("Socks", "Socks & Tights", "Socks and Tights", 78), ("Blazer", "Garment Upper body", "Dressed", 78),
    ("Bag", "Accessories", "Accessories", 76), ("Shirt", "Garment Upper body", "Shirts", 75),
    ("Vest top", "Garment Upper body", "Jersey Fancy", 69), ("Belt", "Accessories", "Accessories", 69),
    ("Trousers", "Garment Lower body", "Jersey Fancy", 69), ("Shorts", "Garment Lower body", "Shorts", 67),
    ("Leggings/Tights", "Garment Lower body", "Jersey Fancy", 61),
    ("Underwear Tights", "Socks & Tights", "Socks and Tights", 61),
    ("Hoodie", "Garment Upper body", "Jersey Fancy", 55),
    ("Dress", "Garment Full body", "Jersey Basic", 55), ("Hair/alice band", "Accessories", "Accessories", 55),
    ("Other accessories", "Accessories", "Accessories", 54), ("Sneakers", "Shoes", "Shoes", 51),
    ("Top", "Garment Upper body", "Jersey Basic", 45), ("Pyjama set", "Nightwear", "Under-, Nightwear", 44),
    ("Vest top", "Garment Upper body", "Blouses", 44), ("Vest top", "Garment Upper body", "Jersey Basic", 40),
]  # fmt: skip
# (index_name, section_name, products in the sample): its 28 commonest sections
SECTIONS = [
    ("Ladieswear", "Womens Everyday Collection", 797), ("Divided", "Divided Collection", 656),
    ("Ladies Accessories", "Womens Small accessories", 439), ("Ladieswear", "Womens Tailoring", 377),
    ("Lingeries/Tights", "Womens Lingerie", 324), ("Ladieswear", "Womens Trend", 248), ("Ladieswear", "H&M+", 244),
    ("Ladieswear", "Womens Casual", 232), ("Ladies Accessories", "Womens Shoes", 222),
    ("Lingeries/Tights", "Womens Swimwear, beachwear", 204), ("Divided", "Divided Projects", 197),
    ("Ladieswear", "Mama", 174), ("Sport", "Ladies H&M Sport", 167),
    ("Lingeries/Tights", "Womens Nightwear, Socks & Tigh", 165), ("Ladies Accessories", "Womens Big accessories", 153),
    ("Ladieswear", "Womens Everyday Basics", 132), ("Baby Sizes 50-98", "Baby Essentials & Complements", 129),
    ("Divided", "Divided Basics", 118), ("Divided", "Ladies Denim", 116), ("Menswear", "Men Underwear", 113),
    ("Divided", "Divided Accessories", 111), ("Ladieswear", "Womens Jackets", 100),
    ("Menswear", "Contemporary Smart", 87), ("Ladieswear", "Womens Premium", 82),
    ("Children Sizes 92-140", "Kids Girl", 73), ("Children Sizes 92-140", "Kids Boy", 67),
    ("Children Sizes 134-170", "Young Girl", 66), ("Menswear", "Men Accessories", 61),
]  # fmt: skip
COLOURS = ["Black", "White", "Dark Blue", "Beige", "Light Beige", "Light Pink", "Blue", "Grey", "Off White",
           "Dark Grey", "Light Blue", "Greenish Khaki", "Gold", "Pink", "Yellowish Brown", "Dark Green"]  # fmt: skip
COLOUR_WEIGHTS = [3296, 1110, 758, 564, 559, 440, 403, 369, 336, 333, 312, 300, 258, 248, 223, 216]
PATTERNS = ["Solid", "All over pattern", "Denim", "Melange", "Stripe", "Check", "Other structure", "Lace"]
PATTERN_WEIGHTS = [6865, 1237, 878, 744, 361, 270, 256, 147]


def _weights(values: list[int]) -> np.ndarray:
    w = np.asarray(values, float)
    return w / w.sum()


class Catalog:
    """The articles of a synthetic shop and their weekly sales weights (what fresh purchases are drawn from)."""

    def __init__(self, n_articles: int, seed: int) -> None:
        rng = np.random.default_rng([seed, 0])
        colours = 1 + rng.geometric(1 / COLOURS_MEAN, size=n_articles) - 1  # >= 1 colour per product, mean 1.76
        ends = np.cumsum(colours)
        n_products = int(np.searchsorted(ends, n_articles) + 1)
        colours = colours[:n_products]
        colours[-1] -= ends[n_products - 1] - n_articles
        self.product_start = np.concatenate([[0], np.cumsum(colours)[:-1]])
        self.product_size = colours
        self.product = np.repeat(np.arange(n_products), colours)  # article -> product
        colour_index = np.arange(n_articles) - self.product_start[self.product]
        codes = 108_775 + np.sort(rng.choice(800_000, size=n_products, replace=False))
        self.article_id = np.array(
            [f"0{codes[p]:06d}{c + 1:03d}" for p, c in zip(self.product, colour_index, strict=True)], dtype=object
        )
        self.product_code = codes
        self.type_of = rng.choice(len(PRODUCT_TYPES), size=n_products, p=_weights([t[3] for t in PRODUCT_TYPES]))
        self.section_of = rng.choice(len(SECTIONS), size=n_products, p=_weights([s[2] for s in SECTIONS]))
        self.pattern_of = rng.choice(len(PATTERNS), size=n_products, p=_weights(PATTERN_WEIGHTS))
        self.colour_of = rng.choice(len(COLOURS), size=n_articles, p=_weights(COLOUR_WEIGHTS))
        self.price = np.exp(rng.normal(np.log(PRICE_MEDIAN), PRICE_SIGMA, size=n_products))[self.product]
        self.cluster = rng.integers(STYLE_CLUSTERS, size=n_products)[self.product]
        launch = rng.integers(-WEEKS // 2, WEEKS, size=n_products)  # a third before the first day
        fade = FADE_WEEKS * np.exp(rng.normal(0.0, 0.8, size=n_products))
        season = rng.choice(3, size=n_products, p=[0.5, 0.25, 0.25])  # all year, summer, winter
        appeal = rng.pareto(APPEAL_ALPHA, size=n_products) + 1.0
        article_appeal = appeal[self.product] * np.exp(rng.normal(0.0, 0.5, size=n_articles))
        weeks = np.arange(WEEKS)
        month = ((START + weeks * 7).astype("datetime64[M]").astype(int) % 12) + 1
        summer = np.isin(month, [4, 5, 6, 7, 8]).astype(float)
        boost = np.stack([np.ones(WEEKS), 0.3 + 1.7 * summer, 0.3 + 1.7 * (1 - summer)])  # (season, week)
        # weights[w, a]: appeal x (launched) x fading x season; kept as per-week CDFs, global and per cluster
        self.by_cluster = np.argsort(self.cluster, kind="stable")
        cluster_sorted = self.cluster[self.by_cluster]
        self.global_cdf = np.empty((WEEKS, n_articles))
        self.cluster_cdf = np.empty((WEEKS, n_articles))
        for w in weeks:
            age = w - launch
            live = np.where(age >= 0, np.exp(-np.maximum(age, 0) / fade), 0.0) + 1e-4  # some old stock sells
            weight = article_appeal * (live * boost[season, w])[self.product]
            cdf = np.cumsum(weight)
            self.global_cdf[w] = cdf / cdf[-1]
            within = weight[self.by_cluster]
            cum = np.cumsum(within)
            first = np.searchsorted(cluster_sorted, np.arange(STYLE_CLUSTERS))
            last = np.searchsorted(cluster_sorted, np.arange(STYLE_CLUSTERS), side="right")
            base = np.concatenate([[0.0], cum])[first]  # cumulative weight before each cluster
            total = np.concatenate([[0.0], cum])[last] - base
            total[total == 0] = 1.0
            self.cluster_cdf[w] = cluster_sorted + (cum - base[cluster_sorted]) / total[cluster_sorted]
        self.cluster_present = np.bincount(self.cluster, minlength=STYLE_CLUSTERS) > 0

    def __len__(self) -> int:
        return len(self.article_id)

    def draw(self, week: np.ndarray, cluster: np.ndarray | None, u: np.ndarray) -> np.ndarray:
        """Articles for purchases in `week` (one uniform `u` each): the week's sales, or within `cluster`."""
        out = np.empty(len(week), np.int64)
        order = np.argsort(week, kind="stable")
        bounds = np.searchsorted(week[order], np.arange(WEEKS + 1))
        for w in range(WEEKS):
            rows = order[bounds[w] : bounds[w + 1]]
            if len(rows) == 0:
                continue
            if cluster is None:
                out[rows] = np.minimum(np.searchsorted(self.global_cdf[w], u[rows]), len(self) - 1)
            else:
                pos = np.searchsorted(self.cluster_cdf[w], cluster[rows] + u[rows])
                out[rows] = self.by_cluster[np.minimum(pos, len(self) - 1)]
        return out

    def table(self) -> pd.DataFrame:
        """`articles.csv` in the H&M layout (the columns stylerec reads, a few more for realism)."""
        types = np.array(PRODUCT_TYPES, dtype=object)[self.type_of[self.product]]
        sections = np.array(SECTIONS, dtype=object)[self.section_of[self.product]]
        return pd.DataFrame(
            {
                "article_id": self.article_id,
                "product_code": [f"{c:06d}" for c in self.product_code[self.product]],
                "prod_name": [
                    f"{t} {c:06d}" for t, c in zip(types[:, 0], self.product_code[self.product], strict=True)
                ],
                "product_type_name": types[:, 0],
                "product_group_name": types[:, 1],
                "graphical_appearance_name": np.array(PATTERNS, dtype=object)[self.pattern_of[self.product]],
                "colour_group_name": np.array(COLOURS, dtype=object)[self.colour_of],
                "index_name": sections[:, 0],
                "section_name": sections[:, 1],
                "garment_group_name": types[:, 2],
            }
        )

    def style_vectors(self, dim: int, seed: int) -> np.ndarray:
        """Unit vectors: a centre per style cluster, a product around it, its colours close to the product."""
        rng = np.random.default_rng([seed, 2])
        centres = rng.normal(size=(STYLE_CLUSTERS, dim)).astype(np.float32)
        n_products = len(self.product_start)
        product = centres[self.cluster[self.product_start]] + rng.normal(0, 0.9, (n_products, dim)).astype(np.float32)
        vectors = product[self.product] + rng.normal(0, 0.35, (len(self), dim)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _negbin(rng: np.random.Generator, mean: float, r: float, size: int) -> np.ndarray:
    return rng.negative_binomial(r, r / (r + mean), size=size)


def _day_cdf() -> np.ndarray:
    days = START + np.arange(DAYS)
    month = days.astype("datetime64[M]").astype(int) % 12
    weekday = (days.astype(int) + 3) % 7  # 1970-01-01 was a Thursday (3)
    months_days = np.bincount(month, minlength=12)
    w = MONTH_WEIGHTS[month] / months_days[month] * WEEKDAY_WEIGHTS[weekday]
    return np.cumsum(w) / w.sum()


def purchases(catalog: Catalog, first: int, count: int, seed: int, chunk: int) -> pa.Table:
    """The purchases of shoppers `first` .. `first + count` (one chunk), as `transactions.csv` rows."""
    rng = np.random.default_rng([seed, 1, chunk])
    ids = np.array([b.hex() for b in np.frombuffer(rng.bytes(32 * count), dtype="S32")], dtype=object)
    taste = rng.integers(STYLE_CLUSTERS, size=(count, 2))
    taste = np.where(catalog.cluster_present[taste], taste, int(np.flatnonzero(catalog.cluster_present)[0]))
    baskets = 1 + _negbin(rng, BASKETS_MEAN, BASKETS_R, count)
    basket_shopper = np.repeat(np.arange(count), baskets)
    basket_day = np.searchsorted(_day_cdf(), rng.random(len(basket_shopper)))
    order = np.lexsort((basket_day, basket_shopper))
    basket_shopper, basket_day = basket_shopper[order], basket_day[order]
    sizes = 1 + _negbin(rng, BASKET_MEAN, BASKET_R, len(basket_shopper))
    n = int(sizes.sum())
    shopper = np.repeat(basket_shopper, sizes)
    day = np.repeat(basket_day, sizes)
    basket_first = np.repeat(np.cumsum(sizes) - sizes, sizes)  # index of the basket's first purchase
    shopper_first = np.searchsorted(shopper, shopper)  # index of the shopper's first purchase
    week = day // 7
    # fresh picks: the shopper's style clusters or the week's best sellers
    u = rng.random(n)
    by_taste = rng.random(n) < P_TASTE
    cluster = np.where(rng.random(n) < 0.7, taste[shopper, 0], taste[shopper, 1])
    article = catalog.draw(week, None, u)
    article[by_taste] = catalog.draw(week[by_taste], cluster[by_taste], u[by_taste])
    # purchases that depend on an earlier one: the same unit again, an earlier basket's article, another colour
    kind = rng.choice(4, size=n, p=[P_DUPLICATE, P_REPEAT, P_SIBLING, 1 - P_DUPLICATE - P_REPEAT - P_SIBLING])
    index = np.arange(n)
    source = np.full(n, -1)
    dup = (kind == 0) & (index > basket_first)
    source[dup] = index[dup] - 1
    earlier = ((kind == 1) | (kind == 2)) & (basket_first > shopper_first)
    span = basket_first[earlier] - shopper_first[earlier]
    source[earlier] = shopper_first[earlier] + (rng.random(int(earlier.sum())) * span).astype(np.int64)
    sibling = (kind == 2) & earlier
    shift = rng.random(n)
    dependent = np.flatnonzero(source >= 0)
    for _ in range(64):  # sources come earlier: resolve the chains (a few steps deep)
        new = article[source[dependent]]
        sib = sibling[dependent]
        product = catalog.product[new[sib]]
        size = catalog.product_size[product]
        offset = new[sib] - catalog.product_start[product]
        step = 1 + (shift[dependent][sib] * np.maximum(size - 1, 1)).astype(np.int64)
        new[sib] = catalog.product_start[product] + (offset + step) % size
        if np.array_equal(new, article[dependent]):
            break
        article[dependent] = new
    price = catalog.price[article] * np.where(rng.random(n) < P_DISCOUNT, 0.7, 1.0)
    dates = (START + np.arange(DAYS)).astype(str)
    return pa.table(
        {
            "t_dat": pa.array(dates[day], pa.string()),
            "customer_id": pa.array(ids[shopper], pa.string()),
            "article_id": pa.array(catalog.article_id[article], pa.string()),
            "price": pa.array(np.round(price, 8)),
            "sales_channel_id": pa.array(np.where(rng.random(n) < P_ONLINE, 2, 1).astype(np.int64)),
        }
    )


def sizes(scale: float) -> tuple[int, int]:
    """(articles, shoppers) of a shop `scale` times H&M's size."""
    return max(100, round(HM_ARTICLES * scale)), max(20, round(HM_SHOPPERS * scale))


def generate(out: str | os.PathLike, scale: float, seed: int = 42, style_dim: int = 256, progress: bool = True) -> dict:
    """Write a shop (see the module docstring) into `out`; returns its summary (also written as `shop.json`)."""
    from tqdm import tqdm

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    n_articles, n_shoppers = sizes(scale)
    catalog = Catalog(n_articles, seed)
    catalog.table().to_csv(out / "articles.csv", index=False)
    rows = 0
    tmp = out / ".transactions.csv.tmp"
    schema = pa.schema([("t_dat", pa.string()), ("customer_id", pa.string()), ("article_id", pa.string()),
                        ("price", pa.float64()), ("sales_channel_id", pa.int64())])  # fmt: skip
    options = pacsv.WriteOptions(include_header=False, quoting_style="none")
    with open(tmp, "wb") as sink, pacsv.CSVWriter(sink, schema, write_options=options) as writer:
        sink.write((",".join(schema.names) + "\n").encode())  # unquoted, as H&M's (format detection reads it)
        bar = tqdm(total=n_shoppers, unit="shopper", desc="purchases", disable=not progress, mininterval=2)
        for chunk, first in enumerate(range(0, n_shoppers, CHUNK)):
            count = min(CHUNK, n_shoppers - first)
            table = purchases(catalog, first, count, seed, chunk)
            writer.write_table(table)
            rows += table.num_rows
            bar.update(count)
            bar.set_postfix(purchases=rows)
        bar.close()
    os.replace(tmp, out / "transactions.csv")
    if style_dim > 0:
        _write_style_store(out / "style", catalog, style_dim, seed)
    summary = {"scale": scale, "seed": seed, "articles": n_articles, "shoppers": n_shoppers, "purchases": rows,
               "style_dim": style_dim, "seconds": round(time.perf_counter() - started, 1)}  # fmt: skip
    (out / "shop.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _write_style_store(folder: Path, catalog: Catalog, dim: int, seed: int) -> None:
    """The embedding store `recsys.shop.catalog` opens, with a synthetic model id (no encoder can make these)."""
    from transfer.store import PROJECTION_FILE, EmbeddingStore

    n = len(catalog)
    store = EmbeddingStore(
        model_id=f"synthetic-{seed}-{dim}",
        encoder={"config": {"synthetic": True, "seed": seed}, "dim": dim},
        ids=[str(a) for a in catalog.article_id],
        paths=[""] * n,
        sha1=[""] * n,
        vectors=catalog.style_vectors(dim, seed),
    )
    store.save(folder)
    with open(folder / PROJECTION_FILE, "wb") as f:
        np.savez(f, kind=np.array("synthetic"), mean=np.zeros(dim, np.float32), matrix=np.eye(dim, dtype=np.float32))


# -- shape statistics ---------------------------------------------------------------------------------------
def shape_stats(folder: str | os.PathLike) -> dict[str, float]:
    """The shape of a shop in the H&M layout (the sample or a generated one): per shopper, basket, product."""
    folder = Path(folder)
    t = pd.read_csv(folder / "transactions.csv", dtype={"article_id": str, "customer_id": str, "t_dat": str})
    a = pd.read_csv(folder / "articles.csv", dtype={"article_id": str, "product_code": str})
    per_shopper = t.groupby("customer_id").size()
    basket = t.groupby(["customer_id", "t_dat"]).size()
    t = t.sort_values("t_dat", kind="stable")
    first_day = t.groupby(["customer_id", "article_id"])["t_dat"].transform("min")
    product = t["article_id"].str[:7]
    first_product_day = t.assign(product=product).groupby(["customer_id", "product"])["t_dat"].transform("min")
    popularity = t["article_id"].value_counts().to_numpy()
    month = pd.to_datetime(t["t_dat"]).dt.month
    return {
        "purchases_per_shopper": float(per_shopper.mean()),
        "purchases_per_shopper_median": float(per_shopper.median()),
        "purchases_per_shopper_p90": float(per_shopper.quantile(0.9)),
        "basket_size": float(basket.mean()),
        "basket_size_median": float(basket.median()),
        "baskets_per_shopper": float(t.groupby("customer_id")["t_dat"].nunique().mean()),
        "colours_per_product": float(a.groupby("product_code").size().mean()),
        "same_basket_repeat": float(t.duplicated(["customer_id", "article_id", "t_dat"]).mean()),
        "repeat_of_earlier_basket": float((t["t_dat"] > first_day).mean()),
        "sibling_of_earlier_basket": float(((t["t_dat"] > first_product_day) & (t["t_dat"] <= first_day)).mean()),
        "top_1pct_articles_share": float(popularity[: max(1, len(popularity) // 100)].sum() / popularity.sum()),
        "price_median": float(t["price"].median()),
        "summer_share": float(month.isin([4, 5, 6, 7]).mean()),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.01, help="fraction of H&M's size (1 = 31.8M purchases)")
    parser.add_argument("--out", help="folder to write the shop to")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--style-dim", type=int, default=256, help="style vector size (0: no embedding store)")
    parser.add_argument("--measure", metavar="DIR", help="print the shape statistics of a shop in the H&M layout")
    args = parser.parse_args(argv)
    if args.measure:
        print(json.dumps({k: round(v, 4) for k, v in shape_stats(args.measure).items()}, indent=2))
        return 0
    if not args.out:
        parser.error("give --out DIR (or --measure DIR)")
    print(json.dumps(generate(args.out, args.scale, args.seed, args.style_dim), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
