"""The one style-blend parser (`recsys.style.palette.parse_blend`): its rules, and the CLI's `--style` and the
service's `style=` giving the same answers and the same errors."""

from __future__ import annotations

import pytest

from recsys.store.data_io import DataError
from recsys.style.palette import parse_blend

BAD = ["swirls:x", "swirls:-1", "swirls:nan", "swirls:inf", ":0.5", "stripes:0,dots:0", "", "stripes:0.5,"]


def test_names_weights_and_several_specs():
    assert parse_blend("swirls") == [("swirls", 1.0)]
    assert parse_blend("swirls:") == [("swirls", 1.0)]
    assert parse_blend("swirls:0.6, dots:0.4") == [("swirls", 0.6), ("dots", 0.4)]
    assert parse_blend(["swirls:0.6", "dots:0.4"]) == parse_blend("swirls:0.6,dots:0.4")
    assert parse_blend("stripes:0,dots:2") == [("stripes", 0.0), ("dots", 2.0)]


def test_image_paths_keep_their_colons():
    assert parse_blend("styles/a.jpg:0.5") == [("styles/a.jpg", 0.5)]
    assert parse_blend("C:\\styles\\a.jpg") == [("C:\\styles\\a.jpg", 1.0)]
    assert parse_blend("C:\\styles\\a.jpg:0.25") == [("C:\\styles\\a.jpg", 0.25)]


@pytest.mark.parametrize("spec", BAD)
def test_bad_specs_are_clear_errors(spec):
    with pytest.raises(DataError, match="style blend"):
        parse_blend(spec)


def test_no_spec_at_all_is_an_error():
    with pytest.raises(DataError, match="at least one style"):
        parse_blend([])


def test_the_cli_and_the_service_agree(service_settings, capsys):
    """Every bad spec: a 422 with the parser's message from the service, exit 2 with the same message from
    `stylerec render`; a good blend renders in both."""
    from fastapi.testclient import TestClient

    from recsys.cli import main
    from recsys.service.app import create_app

    db = str(service_settings.db)
    with TestClient(create_app(service_settings)) as client:
        for spec in BAD:
            with pytest.raises(DataError) as expected:
                parse_blend(spec)
            answer = client.get("/items/D0010/render", params={"style": spec})
            assert answer.status_code == 422, (spec, answer.text)
            if spec:  # an empty style= is refused before the parser, by the parameter's own validation
                assert answer.json()["detail"] == str(expected.value)
            capsys.readouterr()
            assert main(["render", "D0010", "--style", spec, "--db", db]) == 2
            assert capsys.readouterr().err.strip() == f"error: {expected.value}"
        good = client.get("/items/D0010/render", params={"style": "stripes:0.6,dots:0.4"})
        assert good.status_code == 200 and good.headers["content-type"] == "image/jpeg"
