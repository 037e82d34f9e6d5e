"""The one settings object: a flag overrides the environment, which overrides the default; `serve` hands its
settings to its worker processes through the environment, and they read back the same."""

import os
from pathlib import Path

import pytest

from recsys.cli import build_parser, main
from recsys.cli.common import encoder_config, settings_from
from recsys.settings import Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No STYLEREC_* setting from the machine or another test."""
    for name in [n for n in os.environ if n.startswith("STYLEREC_") and n != "STYLEREC_DATASETS"]:
        monkeypatch.delenv(name)


def test_a_flag_overrides_the_environment_which_overrides_the_default(monkeypatch):
    parser = build_parser()
    default = settings_from(parser.parse_args(["serve"]))
    assert default.db == Path("var/stylerec.db") and default.web_workers == 2

    monkeypatch.setenv("STYLEREC_DB", "from-env.db")
    monkeypatch.setenv("STYLEREC_WEB_WORKERS", "3")
    from_env = settings_from(parser.parse_args(["serve"]))
    assert str(from_env.db) == "from-env.db" and from_env.web_workers == 3

    from_flags = settings_from(parser.parse_args(["serve", "--db", "from-flag.db", "--workers", "4"]))
    assert str(from_flags.db) == "from-flag.db" and from_flags.web_workers == 4


def test_every_command_reads_the_same_settings(monkeypatch, tmp_path, capsys):
    """A path set in the environment is where a command looks (here `index info`), unless a flag says otherwise."""
    monkeypatch.setenv("STYLEREC_INDEX", str(tmp_path / "env-index"))
    assert main(["index", "info"]) == 2
    assert "env-index" in capsys.readouterr().err
    assert main(["index", "info", "--index", str(tmp_path / "flag-index")]) == 2
    assert "flag-index" in capsys.readouterr().err


def test_a_bad_value_in_the_environment_is_refused(monkeypatch):
    monkeypatch.setenv("STYLEREC_WEB_WORKERS", "0")
    with pytest.raises(ValueError, match="web_workers"):
        settings_from(build_parser().parse_args(["serve"]))


def test_worker_processes_read_back_the_settings_serve_exports(monkeypatch, tmp_path):
    settings = Settings(
        db=tmp_path / "shop.db", models=tmp_path / "models", api_key="secret", embed_processes=False,
        render_strengths=(0.5, 1.0), max_pixels=1234, event_sync="full", port=8123,
    )  # fmt: skip
    env = settings.to_env()
    assert all(name.startswith("STYLEREC_") for name in env) and "STYLEREC_DEVICE" not in env  # None: left out
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert Settings().model_dump(mode="json") == settings.model_dump(mode="json")


def test_flags_map_to_the_encoder_config_by_name():
    parser = build_parser()
    assert encoder_config(parser.parse_args(["embed", "images"])) is None  # none given: the store's own
    config = encoder_config(parser.parse_args(["embed", "images", "--no-mask", "--dim", "16"]))
    assert config.use_mask is False and config.dim == 16 and config.facets is True
