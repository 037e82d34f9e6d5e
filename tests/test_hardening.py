"""The service under hostile input and hostile operators' conditions: broken JSON, oversized bodies, forged
client addresses, a bounded render cache, and a stop (SIGTERM, SIGKILL) that leaves nothing of the service."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import types
from pathlib import Path

import httpx
import pytest
from conftest import private_service, wait_until
from fastapi.testclient import TestClient
from PIL import Image

from recsys.service.app import create_app
from recsys.service.guards import BadJson, strict_json
from transfer.render_cache import cache_key

KEY = {"X-API-Key": "secret"}
STOP_CEILING_S = 300.0  # a stopped service's processes end in seconds; a busy machine may take far longer
JSON = {"Content-Type": "application/json"}


@pytest.fixture(scope="module")
def settings(service_settings, tmp_path_factory):
    """The demo service on a private copy of its store (what hostile input gets through must not reach other
    modules)."""
    return private_service(service_settings, tmp_path_factory.mktemp("hardening"))


@pytest.fixture(scope="module")
def client(settings):
    settings = settings.model_copy(update={"max_json_bytes": 64 * 1024})
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


# -- broken JSON ---------------------------------------------------------------------------------------------------
BROKEN_VALUES = {
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
    "1e400": "1e400",
    "-1e400": "-1e400",
    "huge integer": "1" * 5000,
    "64-bit overflow": str(2**70),
    "lone surrogate": '"\\ud800"',
    "lone low surrogate": '"\\udc80x"',
    "deep list": "[" * 3000 + "]" * 3000,
    "deep object": '{"a":' * 3000 + "1" + "}" * 3000,
    "huge string": '"' + "x" * 50_000 + '"',
    "object": '{"\\udc80": 1}',
    "list": "[1, 2, NaN]",
}
BROKEN_DOCUMENTS = {
    "not JSON": b"{not json",
    "truncated": b'{"user_id": "U0001", "item_id": ',
    "invalid UTF-8": b'{"user_id": "\xff\xfe"}',
    "surrogate key": b'{"\\udc80": 1}',
    "deep": b"[" * 100_000,
    "NaN document": b"NaN",
    "a list": b"[]",
    "null": b"null",
}


def json_routes(app) -> list[tuple[str, str, list[str]]]:
    """(method, path with ids filled in, body fields) of every operation that takes a JSON body."""
    schema = app.openapi()
    found = []
    for template, operations in schema["paths"].items():
        for method, operation in operations.items():
            content = operation.get("requestBody", {}).get("content", {})
            if "application/json" not in content:
                continue
            body = content["application/json"]["schema"]
            if "$ref" in body:
                body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[1]]
            path = template.replace("{user_id}", "U0001").replace("{item_id}", "D0001").replace("{name}", "dots")
            found.append((method.upper(), path, sorted(body.get("properties", {}))))
    return found


def test_every_json_route_answers_broken_values_with_4xx(client):
    routes = json_routes(client.app)
    assert {("POST", "/events"), ("PUT", "/users/U0001/render-settings")} <= {(m, p) for m, p, _ in routes}
    sent = 0
    for method, path, fields in routes:
        bodies = list(BROKEN_DOCUMENTS.values())
        for field in fields:
            for raw in BROKEN_VALUES.values():
                others = ", ".join(f'"{f}": "x"' for f in fields if f != field)
                bodies.append(("{" + f'"{field}": {raw}' + (f", {others}" if others else "") + "}").encode())
        for body in bodies:
            response = client.request(method, path, content=body, headers={**JSON, **KEY})
            sent += 1
            assert 400 <= response.status_code < 500, (method, path, body[:80], response.status_code)
            detail = response.json()["detail"]  # always a JSON body that says what was wrong
            assert detail and len(response.content) < 20_000, (method, path, body[:80])
    assert sent > 100


def test_the_examples_of_the_issue_get_4xx_not_500(client):
    event = '{"user_id": "U0001", "item_id": "D0001", "event": "click", "timestamp": %s}'
    for value in ("NaN", "Infinity", "-Infinity", "1e400"):
        response = client.post("/events", content=event % value, headers=JSON)
        message = response.json()["detail"][0]["msg"]
        assert response.status_code == 422 and ("range" in message or "not a JSON value" in message), value
    surrogate = client.post("/events", content='{"user_id": "\\ud800", "item_id": "D0001"}', headers=JSON)
    assert surrogate.status_code == 422 and "surrogate" in surrogate.json()["detail"][0]["msg"]
    for body in ('{"brightness": NaN}', '{"\\udc80": 1}'):
        assert client.put("/users/U0001/render-settings", content=body, headers=JSON).status_code == 422
    deep = '{"a":' * 3000 + "1" + "}" * 3000
    answer = client.post("/items", data={"item_id": "DEEP1", "attributes": deep}, headers=KEY)
    assert answer.status_code == 422 and "nested" in answer.json()["detail"]
    for bad in ('{"a": NaN}', '{"a": "\\ud800"}', '{"a": 1e999}'):
        assert client.post("/items", data={"item_id": "BAD1", "attributes": bad}, headers=KEY).status_code == 422
    assert client.get("/items/BAD1").status_code == 404  # nothing stored


def test_validation_errors_echo_only_short_json_values(client):
    long = "y" * 10_000
    response = client.post("/events", json={"user_id": long, "item_id": "D0001"})
    assert response.status_code == 422
    issue = response.json()["detail"][0]
    assert issue["loc"] == ["body", "user_id"] and len(issue["input"]) <= 101 and "ctx" not in issue
    extra = client.put("/users/U0001/render-settings", json={"brightness": 1, "surplus": {"a": [1, 2]}})
    assert extra.status_code == 422 and "input" not in extra.json()["detail"][0]  # structures are not echoed
    many = client.put("/users/U0001/render-settings", json={f"k{i}": i for i in range(500)})
    assert many.status_code == 422 and len(many.json()["detail"]) == 20


def test_strict_json_accepts_standard_json():
    assert strict_json(b'{"a": [1, 2.5, "\\u00e9", null, true], "b": {"c": -3e10}}') == {
        "a": [1, 2.5, "é", None, True],
        "b": {"c": -3e10},
    }
    assert strict_json('"\\ud83d\\ude00"') == "😀"  # a surrogate pair is a character, not a lone surrogate
    for bad in ("NaN", "1e400", '"\\ud800"', "[" * 40 + "]" * 40):
        with pytest.raises(BadJson):
            strict_json(bad)


# -- bodies capped before they are read ------------------------------------------------------------------------
def test_json_bodies_are_capped(client):
    huge = b'{"user_id": "' + b"x" * (65 * 1024) + b'", "item_id": "D0001"}'
    response = client.post("/events", content=huge, headers=JSON)
    assert response.status_code == 413 and "larger" in response.json()["detail"]

    def stream():  # no Content-Length: the cap holds on the stream too
        for _ in range(100):
            yield b"x" * 4096

    streamed = client.post("/events", content=stream(), headers=JSON)
    assert streamed.status_code == 413


def test_uploads_are_capped_on_the_stream(client, settings):
    limit = settings.max_upload_bytes

    def stream():
        yield b"--b\r\nContent-Disposition: form-data; name=image; filename=a.jpg\r\nContent-Type: image/jpeg\r\n\r\n"
        for _ in range(limit // 65536 + 4):
            yield b"\xff" * 65536

    headers = {"Content-Type": "multipart/form-data; boundary=b"}
    response = client.post("/shop-this-style", content=stream(), headers=headers)
    assert response.status_code == 413


def test_admin_key_is_checked_before_the_body(client):
    def never():  # a body the route would have to read: the answer comes without it
        raise AssertionError("the body was read")
        yield b""

    for headers, status in (({}, 401), ({"X-API-Key": "wrong"}, 403)):
        response = client.post(
            "/items", content=never(), headers={"Content-Type": "multipart/form-data; boundary=b", **headers}
        )
        assert response.status_code == status


def _raw_request(port: int, head: bytes, ceiling: float = 300.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=ceiling) as sock:
        sock.sendall(head + b"x" * 1024)  # 1 KiB of the announced 300 MB: an answer proves it was not waited for
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


def test_a_300_mb_announcement_is_refused_unread(running):
    port = running
    admin = b"X-API-Key: secret\r\n"
    for path, extra in (("/items", b""), ("/shop-this-style", b""), ("/events", b""), ("/items", admin)):
        head = (
            (
                f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                f"Content-Length: {300 * 1024 * 1024}\r\n"
            ).encode()
            + extra
            + b"\r\n"
        )
        answer = _raw_request(port, head)
        status = int(answer.split(b" ", 2)[1])
        assert status == (401 if path == "/items" and not extra else 413), (path, answer[:200])


# -- a real server: uvicorn with the options `stylerec serve` gives it -------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def _uvicorn(settings):
    """The app served by uvicorn in a thread, with `stylerec serve`'s proxy options; yields the port."""
    import uvicorn

    from recsys.service.server import uvicorn_options

    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning",
                            **uvicorn_options(settings))  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started, f"uvicorn on port {port} to start", every=0.1)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(60)


@pytest.fixture(scope="module")
def running(settings):
    with _uvicorn(settings) as port:
        yield port


def _fresh(settings, tmp_path):
    source, copy = sqlite3.connect(settings.db), sqlite3.connect(tmp_path / "shop.db")
    source.backup(copy)
    source.close()
    copy.close()
    return settings.model_copy(update={"db": tmp_path / "shop.db", "renders_dir": tmp_path / "renders"})


def _gatys(port: int, strength: float, forged: str | None = None, admin: bool = False) -> int:
    headers = {"X-Forwarded-For": forged} if forged else {}
    if admin:
        headers |= KEY
    params = {"style": "dots", "renderer": "gatys", "strength": strength}
    return httpx.get(
        f"http://127.0.0.1:{port}/items/D0007/render", params=params, headers=headers, timeout=600
    ).status_code


@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_forged_forwarded_for_changes_nothing_unless_the_proxy_is_trusted(service_settings, tmp_path, trusted):
    settings = _fresh(service_settings, tmp_path).model_copy(
        update={"trusted_proxies": trusted, "render_queue": 8, "render_per_client": 2, "render_admin_share": 0.25}
    )
    with _uvicorn(settings) as port:
        answers = [_gatys(port, s, forged=f"10.0.0.{i}") for i, s in enumerate((0.25, 0.5, 0.75, 1.0))]
        if trusted:  # behind a trusted proxy, each forwarded address is a client of its own
            assert answers == [202, 202, 202, 202]
        else:  # the forged header is ignored: one client, bound to 2 renders
            assert answers == [202, 202, 429, 429]


def test_a_share_of_the_render_queue_is_kept_for_admins(service_settings, tmp_path):
    settings = _fresh(service_settings, tmp_path).model_copy(
        update={"render_queue": 4, "render_per_client": 2, "render_admin_share": 0.5}
    )
    with TestClient(create_app(settings)) as c:
        renders = c.app.state.service.renders
        assert renders.queue_bound("1.2.3.4") == 2 and renders.queue_bound("admin") == 4
        url = "/items/D0007/render"
        for client, strength in (("10.0.0.1", 0.25), ("10.0.0.2", 0.5)):
            # the route keys clients by their address: two other clients are queued directly
            options = renders.options("gatys", strength, True, admin=False)
            assert isinstance(renders.request("D0007", "dots", options, client, url), str)
        third = c.get(url, params={"style": "dots", "strength": 0.75, "renderer": "gatys"})
        assert third.status_code == 429 and "full" in third.json()["detail"]  # anonymous: their share is used
        for strength in (0.3, 0.4):  # admins still get the kept share
            assert (
                c.get(url, params={"style": "dots", "strength": strength, "renderer": "gatys"}, headers=KEY).status_code
                == 202
            )
        assert (
            c.get(url, params={"style": "dots", "strength": 0.45, "renderer": "gatys"}, headers=KEY).status_code == 429
        )


# -- the render cache stays under its size --------------------------------------------------------------------------
def test_the_render_cache_evicts_the_least_recently_used(tmp_path, demo_catalog):
    from transfer.render import RenderOptions
    from transfer.render_cache import RenderCache

    product, style = sorted((demo_catalog / "images").glob("*.jpg"))[:2]

    class Copy:  # a renderer that returns the product itself: every render is the same size
        def render(self, image, reference, options, progress=False):
            return types.SimpleNamespace(image=Image.fromarray(image.rgb))

    def options(i: int) -> RenderOptions:
        return RenderOptions(renderer="fast", size=64, saturation=1 + i / 10)  # a different render each

    one = len(RenderCache(tmp_path / "probe").render(product, style, options(0), Copy())[0])
    cache = RenderCache(tmp_path / "cache", max_bytes=int(one * 5.5))
    keys = [cache_key(product.read_bytes(), style.read_bytes(), options(i)) for i in range(6)]
    for i in range(6):
        assert cache.render(product, style, options(i), Copy())[1] is False
        if i == 2:
            time.sleep(0.02)
            assert cache.get(keys[0]) is not None  # used again: now more recent than 1 and 2
        time.sleep(0.02)  # distinct modification times
    # the sixth render passed the limit: the least recently used (1, then 2) went, down to 90% of it
    assert [cache.get(k) is not None for k in keys] == [True, False, False, True, True, True]
    assert cache.size() <= cache.max_bytes * cache.EVICT_TO
    assert cache.render(product, style, options(1), Copy())[1] is False  # evicted: rendered again


# -- nothing of the service is left after a stop ----------------------------------------------------------------
def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            tree.setdefault(ppid, []).append(int(entry))
    return tree


def _descendants(pid: int) -> set[int]:
    tree, found, todo = _children(), set(), [pid]
    while todo:
        for child in tree.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has ended (its new parent reaps it when it does)


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stopped_service_leaves_nothing_running(service_settings, tmp_path, how):
    settings = _fresh(service_settings, tmp_path)
    port = _free_port()
    env = {**os.environ, "STYLEREC_DB": str(settings.db), "STYLEREC_EMBEDDINGS": str(settings.embeddings),
           "STYLEREC_INDEX": str(settings.index), "STYLEREC_MODELS": str(settings.models),
           "STYLEREC_RENDERS_DIR": str(settings.renders_dir), "STYLEREC_UPLOADS_DIR": str(tmp_path / "uploads"),
           "STYLEREC_STYLES_DIR": str(tmp_path / "styles"), "STYLEREC_API_KEY": "secret",
           "PYTHONPATH": str(Path(__file__).resolve().parents[1])}  # fmt: skip
    command = [sys.executable, "-m", "recsys.cli", "serve", "--port", str(port), "--workers", "2"]
    serve = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(lambda: _healthy(base, serve), f"stylerec serve on port {port} to answer /health", every=0.5)
        photo = _jpeg()
        for _ in range(2):  # both web workers (likely) start their embedding process
            answer = httpx.post(f"{base}/shop-this-style", files={"image": ("p.jpg", photo, "image/jpeg")}, timeout=300)
            assert answer.status_code == 200
        processes = _descendants(serve.pid)
        assert len(processes) >= 4  # 2 web workers, the render worker, an embedding process (+ resource trackers)
        if how == signal.SIGKILL:  # a web worker killed (uvicorn starts another): its embedding process ends too
            tree = _children()
            worker = next(pid for pid in tree.get(serve.pid, []) if tree.get(pid))
            orphans = _descendants(worker)
            os.kill(worker, signal.SIGKILL)
            wait_until(
                lambda: not any(_alive(pid) for pid in orphans),
                lambda: f"the killed worker's processes to end: {[_cmdline(pid) for pid in orphans if _alive(pid)]}",
                ceiling=STOP_CEILING_S,
                every=0.1,
            )
            processes = _descendants(serve.pid) | processes
        serve.send_signal(how)
        # a ceiling, not the bar: benchmarks/hardening.py measures the stop (10 s is the bound)
        wait_until(
            lambda: not any(_alive(pid) for pid in processes) and not _answers(port) and serve.poll() is not None,
            lambda: f"the stopped service to end: {[(pid, _cmdline(pid)) for pid in processes if _alive(pid)]}",
            ceiling=STOP_CEILING_S,
            every=0.1,
        )
        left = [(pid, _cmdline(pid)) for pid in processes if _alive(pid)]
        assert not left and serve.poll() is not None, left
        assert not _answers(port)
    finally:  # whatever happened, nothing of this test's service outlives it (children first: once `serve` is
        # gone they are no longer its descendants)
        for pid in _descendants(serve.pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        if serve.poll() is None:
            serve.kill()
        serve.wait(STOP_CEILING_S)


def _healthy(base: str, serve: subprocess.Popen) -> bool:
    """Whether `stylerec serve` answers /health (and fail at once if it ended before it did)."""
    assert serve.poll() is None, "stylerec serve ended before it answered"
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{base}/health", timeout=30).status_code == 200
    return False


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return ""


def _jpeg() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (120, 180), (30, 60, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


# -- the documentation tells the truth, offline ---------------------------------------------------------------
def test_docs_load_every_asset_from_the_app(client):
    import re

    for page in ("/docs", "/redoc"):
        html = client.get(page)
        assert html.status_code == 200
        assets = re.findall(r'(?:src|href)="([^"]+)"', html.text)
        assert assets and all(a.startswith("/") and not a.startswith("//") for a in assets), assets
        for asset in assets:
            assert client.get(asset).status_code == 200, asset
        assert "cdn" not in html.text.lower() and "googleapis" not in html.text


def test_openapi_documents_every_operation_and_its_errors(client):
    schema = client.get("/openapi.json").json()
    error = "#/components/schemas/ErrorBody"
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description"), (method, path)
            responses = operation["responses"]
            assert {"422", "500"} <= set(responses), (method, path)
            if "requestBody" in operation:
                assert {"400", "413"} <= set(responses), (method, path)
            if operation.get("security"):
                assert {"401", "403"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    assert response["content"]["application/json"]["schema"]["$ref"] == error, (method, path, status)
    assert "429" in schema["paths"]["/items/{item_id}/render"]["get"]["responses"]
    assert "409" in schema["paths"]["/admin/cf/retrain"]["post"]["responses"]
    assert len(schema["components"]["schemas"]["EventIn"]["oneOf"]) == 2  # item event or style feedback
    problem = client.post("/events", json={"user_id": "U0001"}).json()  # the real 422 body matches ErrorBody
    from recsys.service.openapi import ErrorBody

    ErrorBody.model_validate(problem)
