import json
import shutil

import pytest

from recsys.cli import main


@pytest.fixture()
def labelled(tmp_path, demo_catalog):
    """<pattern>/<image> folders from the demo catalog, plus a stray file at the top (ignored)."""
    from recsys.shop.demo import read_catalog

    root = tmp_path / "labelled"
    for item_id, row in read_catalog(demo_catalog / "items.csv").items():
        if row["pattern"] in ("stripes", "dots", "solid") and int(item_id[1:]) % 3 == 0:
            (root / row["pattern"]).mkdir(parents=True, exist_ok=True)
            shutil.copy(demo_catalog / row["image"], root / row["pattern"])
    (root / "README.txt").write_text("not a label folder")
    return root


def test_style_eval_json_shape(labelled, capsys):
    assert main(["style-eval", str(labelled), "--method", "colour-hist", "--json", "--image-size", "64"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"map@10", "p@10", "n"}
    assert result["n"] == len(list(labelled.glob("*/*.jpg")))
    assert 0 <= result["map@10"] <= 1


def test_style_eval_several_methods(labelled, capsys):
    args = ["style-eval", str(labelled), "--method", "gram,content", "--json", "--image-size", "64", "--dim", "16"]
    assert main(args) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"gram", "content"}
    assert result["gram"]["map@10"] > 0.5  # three very different patterns


def test_style_eval_errors(tmp_path, capsys):
    assert main(["style-eval", str(tmp_path / "missing")]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert main(["style-eval", str(tmp_path), "--method", "nope"]) == 2
    assert "unknown method" in capsys.readouterr().err


def _embedded_shop(demo_catalog, tmp_path, capsys, last: str) -> list[str]:
    """The demo catalog imported into a shop whose images up to `last` are embedded (small vectors); the shop
    flags for `similar`."""
    images = tmp_path / "images"
    shutil.copytree(demo_catalog / "images", images, ignore=lambda d, names: [n for n in names if n > last])
    store = tmp_path / "store"
    assert main(["embed", str(images), "--out", str(store), "--image-size", "64", "--dim", "16", "-q"]) == 0
    assert main(["import", "--db", str(tmp_path / "shop.db"), "--catalog", str(demo_catalog)]) == 0
    capsys.readouterr()
    return ["--db", str(tmp_path / "shop.db"), "--store", str(store), "--index", str(tmp_path / "index"),
            "--models", str(tmp_path / "models")]  # fmt: skip


def test_embed_then_similar(demo_catalog, tmp_path, capsys):
    shop = _embedded_shop(demo_catalog, tmp_path, capsys, "D0030.jpg")
    assert main(["similar", "D0003", *shop, "-k", "4", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 4 and all(r["item_id"] != "D0003" for r in results)
    assert results[0]["score"] >= results[-1]["score"]

    # shop this style from a photo: the item's own photo comes back first
    photo = tmp_path / "images" / "D0012.jpg"
    assert main(["similar", "--image", str(photo), *shop, "-k", "3", "--json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["item_id"] == "D0012" and results[0]["score"] == pytest.approx(1.0, abs=1e-4)

    assert main(["similar", "NOPE", *shop]) == 2
    assert "unknown item id 'NOPE'" in capsys.readouterr().err
    assert main(["similar", "D0003", "--db", str(tmp_path / "none.db")]) == 2
    assert "no store at" in capsys.readouterr().err


def test_similar_answers_from_the_persisted_index_like_the_service(demo_catalog, tmp_path, capsys):
    from recsys.shop.catalog import CatalogPaths, open_catalog
    from transfer.facets import facet_weights, pattern_dim_of, weigh_query
    from transfer.store import EmbeddingStore

    shop = _embedded_shop(demo_catalog, tmp_path, capsys, "D0020.jpg")
    index = tmp_path / "index"
    assert main(["index", "build", "--store", shop[3], "--out", str(index)]) == 0
    built = json.loads(capsys.readouterr().out)
    assert built["count"] == 20 and built["spec"] == "Flat" and built["model_id"].startswith("vgg19-facets-16-")
    assert main(["index", "info", "--index", str(index)]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 20

    assert main(["similar", "D0003", *shop, "-k", "5", "--json"]) == 0
    via_cli = json.loads(capsys.readouterr().out)
    vectors = EmbeddingStore.load(shop[3])
    query = weigh_query(vectors.vector("D0003"), pattern_dim_of(vectors.model_id), facet_weights("both"))
    exact = vectors.similar(query, 5, exclude="D0003")  # the default facet: both, the pattern leading
    assert [r["item_id"] for r in via_cli] == [i for i, _ in exact]
    catalog = open_catalog(CatalogPaths(*(tmp_path / p for p in ("shop.db", "store", "index", "models"))))
    assert catalog.versions.index is not None  # the CLI and this opener serve the index `index build` saved
    assert [r.item_id for r in catalog.similar("D0003", 5)] == [r["item_id"] for r in via_cli]
    catalog.close()

    assert main(["index", "info", "--index", str(tmp_path / "none")]) == 2
    assert "no index" in capsys.readouterr().err


def test_demo_main_job(tmp_path, capsys):
    args = ["demo", "--catalog", str(tmp_path / "demo"), "--store", str(tmp_path / "store")]
    args += ["--index", str(tmp_path / "index"), "--db", str(tmp_path / "db.sqlite"), "--image-size", "64", "-q"]
    args += ["--models", str(tmp_path / "models"), "--no-serve"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "288 added" in out and out.count("shop this style:") == 6
    share = float(out.split("share the query's pattern ")[1].split("%")[0])
    assert share > 40, "the demo's style neighbours should mostly share the pattern (chance is 17%)"
    assert "feed: learned ranker (LightGBM) trained on" in out  # the demo shop has the data to learn one
    assert main(args) == 0
    again = capsys.readouterr().out
    assert "0 added, 0 updated, 288 unchanged" in again and "feed: learned ranker" not in again  # kept, not retrained
    assert (tmp_path / "models" / "ranker" / "CURRENT").read_text() == "v000001"


def test_a_busy_port_is_reported_before_the_build(tmp_path, capsys):
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = ["demo", "--catalog", str(tmp_path / "demo"), "--store", str(tmp_path / "store"), "--port", str(port)]
        assert main(args) == 2
    error = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1:{port}" in error and "make demo PORT=N" in error
    assert not (tmp_path / "demo").exists()  # nothing was built


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys):
    """Bad paths, bad URLs, unknown names and bad images: a one-line `error:` and exit 2, no traceback."""
    (tmp_path / "not_an_image.jpg").write_bytes(b"plain text")
    (tmp_path / "empty").mkdir()
    cases = [
        (["copy-store", str(tmp_path / "none.db"), str(tmp_path / "copy.db")], "no store at"),
        (["copy-store", str(tmp_path / "none.db"), "mysql://shop"], "mysql://shop"),
        (["styles", "remove", "nope", "--db", str(tmp_path / "shop.db")], "unknown style 'nope'"),
        (["import", "--db", str(tmp_path / "shop.db"), "--catalog", str(tmp_path / "empty")], "no catalog here"),
        (["import", "--db", str(tmp_path / "shop.db")], "nothing to import"),
        (["render", "NOPE", "--style", str(tmp_path / "not_an_image.jpg"), "--db", str(tmp_path / "none.db"),
          "--cache", str(tmp_path / "cache")], "NOPE: not an image file"),
        (["render", "NOPE", "--style", "nostyle", "--db", str(tmp_path / "none.db")], "no style named 'nostyle'"),
    ]  # fmt: skip
    for args, message in cases:
        assert main(args) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and "Traceback" not in err, (args, err)


def test_a_bug_is_not_dressed_up_as_a_user_error(monkeypatch):
    """Only `StylerecError`s are user errors: a plain `ValueError` from inside a command is a bug and propagates
    (a traceback), rather than being printed as if the user had done something wrong."""
    from recsys.store import opener

    def broken(*args, **kwargs):
        raise ValueError("a bug inside the store")

    monkeypatch.setattr(opener, "open_store", broken)
    with pytest.raises(ValueError, match="a bug inside the store"):
        main(["styles", "list", "--db", "x.db"])


def test_a_stylerec_error_exits_with_its_own_code(monkeypatch, capsys):
    from common.errors import BadInput
    from recsys.store import opener

    def refuse(*args, **kwargs):
        raise BadInput("refused", exit_code=5)

    monkeypatch.setattr(opener, "open_store", refuse)
    assert main(["styles", "list", "--db", "x.db"]) == 5
    assert capsys.readouterr().err == "error: refused\n"
