"""The one error base class: every user-facing error maps to a 4xx (or 503) through the service's one handler,
anything else is a 500 JSON that names the request id, and the CLI's one `except` turns them into exit codes."""

from __future__ import annotations

import importlib
import pickle
import pkgutil

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from common.errors import BadInput, NothingToTrain, StylerecError
from recsys.service.errors import add_error_handlers

PACKAGES = ("common", "transfer", "index", "recsys")


def _all_modules() -> None:
    """Import every module of ours (but entry points), so that every `StylerecError` subclass is defined."""
    for name in PACKAGES:
        package = importlib.import_module(name)
        for info in pkgutil.walk_packages(package.__path__, f"{name}."):
            if not info.name.endswith("__main__"):
                importlib.import_module(info.name)


def _subclasses(cls: type) -> list[type]:
    found, stack = [], [cls]
    while stack:
        for sub in stack.pop().__subclasses__():
            if sub.__module__.split(".")[0] in PACKAGES and sub not in found:
                found.append(sub)
                stack.append(sub)
    return found


def _instance(cls: type) -> StylerecError:
    """An instance of any subclass, whatever its constructor takes (a message, an id, a limit...)."""
    for args in (("a message",), (7,), ("a message", 3), ()):
        try:
            return cls(*args)
        except TypeError:
            continue
    raise AssertionError(f"cannot make a {cls.__name__}")


def _app(exc: Exception) -> TestClient:
    app = FastAPI()
    add_error_handlers(app)

    @app.get("/raise")
    def raise_it():
        raise exc

    return TestClient(app, raise_server_exceptions=False)


ALL = (_all_modules(), _subclasses(StylerecError))[1]


def test_every_user_facing_error_derives_from_the_base():
    names = {cls.__name__ for cls in ALL}
    expected = {"ImageError", "ImageTooLarge", "RenderError", "HeadError", "StoreError", "IndexFileError",
                "DataError", "StoreURLError", "TargetNotEmpty", "SchemaError", "NotFound", "QueueFull",
                "NoPostgres", "JobRunning", "Busy", "BadJson", "BodyTooLarge", "NothingToTrain", "StoreUnreachable",
                "AdminRefused", "BadInput", "NoSuchFile", "PortBusy"}  # fmt: skip
    assert expected <= names, expected - names


@pytest.mark.parametrize("cls", ALL, ids=lambda cls: f"{cls.__module__}.{cls.__name__}")
def test_every_stylerec_error_is_a_4xx_or_503_with_a_json_detail(cls):
    exc = _instance(cls)
    assert 400 <= exc.http_status < 500 or exc.http_status == 503, exc.http_status
    assert exc.exit_code != 0
    answer = _app(exc).get("/raise")
    assert answer.status_code == exc.http_status
    body = answer.json()
    assert isinstance(body["detail"], str) and body["detail"]
    if exc.http_status == 429 or cls.__name__ == "Busy":
        assert answer.headers["Retry-After"].isdigit(), cls  # a busy answer says when to try again


def test_an_unknown_exception_is_a_500_in_json_naming_the_request():
    answer = _app(RuntimeError("secret internals")).get("/raise")
    assert answer.status_code == 500
    body = answer.json()
    assert "internal error" in body["detail"] and "secret" not in answer.text and "request_id" in body


def test_status_and_exit_code_are_overridable_per_instance():
    exc = BadInput("no", http_status=400, exit_code=3)
    assert (exc.http_status, exc.exit_code, BadInput.http_status) == (400, 3, 422)
    assert _app(exc).get("/raise").status_code == 400


def test_a_too_large_image_is_its_own_class_and_a_413(tmp_path):
    from PIL import Image

    from transfer.images import ImageError, ImageTooLarge, load_image

    path = tmp_path / "big.png"
    Image.new("RGB", (100, 100)).save(path)
    with pytest.raises(ImageTooLarge) as caught:
        load_image(path, max_pixels=100)
    assert isinstance(caught.value, ImageError) and isinstance(caught.value, ValueError)  # old callers still catch it
    answer = _app(caught.value).get("/raise")
    assert answer.status_code == 413 and answer.json()["detail"].startswith("not a usable image: ")
    with pytest.raises(ImageError) as caught:
        load_image(b"not an image")
    assert type(caught.value) is ImageError and caught.value.http_status == 422


def test_errors_survive_the_trip_back_from_the_embedding_process():
    from transfer.images import ImageTooLarge

    exc = pickle.loads(pickle.dumps(ImageTooLarge("x.png: too many pixels", exit_code=4)))
    assert type(exc) is ImageTooLarge and str(exc) == "x.png: too many pixels" and exc.exit_code == 4


def test_old_stdlib_parents_are_kept():
    from recsys.store.sqlite import NotFound
    from transfer.images import ImageError

    assert issubclass(ImageError, ValueError) and issubclass(NotFound, KeyError)
    assert str(NotFound("unknown item 'X'")) == "unknown item 'X'"  # not KeyError's quoted repr


def test_a_job_running_answer_names_the_job():
    from recsys.service.admin_jobs import JobRunning

    answer = _app(JobRunning("abc")).get("/raise")
    assert answer.status_code == 409 and answer.json()["job_id"] == "abc"


def test_nothing_to_train_is_a_conflict_not_a_missing_thing():
    answer = _app(NothingToTrain("no events to train on")).get("/raise")
    assert answer.status_code == 409 and answer.json() == {"detail": "no events to train on"}
    assert isinstance(NothingToTrain("x"), ValueError)
