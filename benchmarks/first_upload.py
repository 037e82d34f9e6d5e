"""The first photo upload after the service starts (issue 22): the service warms its embedding worker (process
start, encoder load, one photo) as it starts, so the first shopper's upload costs what the next one does.

    python benchmarks/first_upload.py [--items 24] [--image-size 256]

Builds a small demo shop in a temporary folder (the first `--items` demo products, the default encoder config:
what an upload costs does not depend on the catalog's size), then for a fresh service: the seconds from start to
ready, the warm-up, the first upload after it and the next two (multipart POST /shop-this-style, k=12).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient


def build_shop(root: Path, items: int, image_size: int | None):
    from recsys.settings import Settings
    from recsys.shop.demo import make_demo_catalog
    from recsys.store.data_io import read_catalog
    from recsys.store.sqlite import Store
    from transfer.embed import embed_folder
    from transfer.encoder import EncoderConfig

    full = root / "full"
    make_demo_catalog(full)
    shop = root / "shop"
    (shop / "images").mkdir(parents=True)
    lines = (full / "items.csv").read_text().splitlines()
    (shop / "items.csv").write_text("\n".join(lines[: items + 1]) + "\n")
    for line in lines[1 : items + 1]:
        image = line.split(",")[-1]
        shutil.copy(full / image, shop / image)
    config = EncoderConfig() if image_size is None else EncoderConfig(image_size=image_size)
    embed_folder(shop / "images", root / "store", config, progress=False)
    store = Store(root / "shop.db")
    store.import_items(read_catalog(shop), "demo")
    store.close()
    return Settings(db=root / "shop.db", embeddings=root / "store", index=root / "index", models=root / "models",
                    styles_dir=root / "styles", renders_dir=root / "renders", uploads_dir=root / "uploads")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=24)
    parser.add_argument("--image-size", type=int, default=None)
    args = parser.parse_args()
    from recsys.service.app import create_app

    with tempfile.TemporaryDirectory() as tmp:
        settings = build_shop(Path(tmp), args.items, args.image_size)
        photo = (Path(tmp) / "full" / "images" / "D0100.jpg").read_bytes()  # not in the small shop
        started = time.perf_counter()
        with TestClient(create_app(settings)) as client:
            ready = time.perf_counter() - started
            for future in client.app.state.service.embedder.warm:
                future.result(timeout=600)
            warm = time.perf_counter() - started
            times = []
            for _ in range(3):
                start = time.perf_counter()
                response = client.post("/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")},
                                       data={"k": "12"})  # fmt: skip
                times.append(time.perf_counter() - start)
                assert response.status_code == 200, response.text
    print(f"service ready after {ready:.1f} s; encoder warm after {warm:.1f} s")
    print("uploads after the warm-up: " + ", ".join(f"{t:.2f} s" for t in times) + " (first, second, third)")


if __name__ == "__main__":
    main()
