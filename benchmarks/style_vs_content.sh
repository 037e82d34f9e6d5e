#!/bin/bash
# The style-vs-content set of issue 16: N dev H&M products x the style images, rendered by the fast renderer at
# strength 0.6 with the product's colours kept (a real restyle), laid out as <style>/<article_id>.jpg for
# `stylerec style-eval` / benchmarks/style_quality.py (relevance = same style; leak@1 = nearest is the same product).
#
#   benchmarks/style_vs_content.sh OUT_DIR [N_PRODUCTS]
#
# Products: a seeded sample of imaged H&M articles, at most 6 per product group; styles: the six paintings of
# datasets/styles plus the first image of dtd10's braided and crystalline classes.
set -euo pipefail
out=${1:?usage: $0 OUT_DIR [N_PRODUCTS]}
n=${2:-30}
data=${STYLEREC_DATASETS:-$(dirname "$0")/../../shared/datasets}
mkdir -p "$out/styles" "$out/renders" "$out/set"
cp "$data"/styles/*.jpg "$out/styles/"
cp "$(ls "$data"/dtd10/braided/*.jpg | head -1)" "$out/styles/dtd_braided.jpg"
cp "$(ls "$data"/dtd10/crystalline/*.jpg | head -1)" "$out/styles/dtd_crystalline.jpg"
python - "$data" "$n" > "$out/products.txt" <<'PY'
import sys
import pandas as pd
data, n = sys.argv[1], int(sys.argv[2])
a = pd.read_csv(f"{data}/hm/articles.csv", dtype={"article_id": str})
a = a[a["has_image"]].sample(frac=1, random_state=16)
for aid in sorted(a.groupby("product_group_name").head(6).head(40)["article_id"])[:n]:
    print(f"{data}/hm/images/{aid[:3]}/{aid}.jpg")
PY
for style in "$out"/styles/*.jpg; do
    name=$(basename "$style" .jpg)
    mkdir -p "$out/renders/$name" "$out/set/$name"
    stylerec render $(cat "$out/products.txt") --style "$style" --renderer fast --strength 0.6 \
        --out "$out/renders/$name" --cache "$out/render-cache" --threads 1 -q
    for f in "$out/renders/$name"/*.jpg; do
        ln -sf "$(realpath "$f")" "$out/set/$name/$(basename "$f" | cut -d- -f1).jpg"
    done
done
echo "$out/set: $(find "$out/set" -name '*.jpg' | wc -l) images"
