"""The service probed as an attacker and an operator would (issue 23), against `stylerec serve --workers 2` on a
copy of the demo shop (admin key set):

    stylerec demo --no-serve          # once: the demo catalog, store and vectors in var/
    python benchmarks/hardening.py [--port 8767]

1. bodies announced at 300 MB (anonymous and admin `POST /items`, `/shop-this-style`, `/events`): the status and
   how long the answer took, with 1 KiB of the body sent;
2. broken JSON (NaN, ±Infinity, 1e400, lone surrogates, deep nesting, huge strings) posted to every JSON route
   and as an admin item's attributes: the statuses (no 5xx);
3. eight forged X-Forwarded-For addresses from one client asking for renders, then an admin's render;
4. SIGTERM, then (on a fresh start) SIGKILL of `stylerec serve` after a photo upload: how long until no process
   of the service is left and the port is free.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, os.path.dirname(__file__))
from serving import copy_shop, start_service

KEY = "bench-key"


def start(port: int, env: dict) -> subprocess.Popen:
    return start_service(port, ["--workers", "2"], env, ceiling_s=300, stdout=subprocess.DEVNULL)


def announced(port: int, path: str, admin: bool) -> dict:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
        f"Content-Length: {300 * 1024 * 1024}\r\n" + (f"X-API-Key: {KEY}\r\n" if admin else "") + "\r\n"
    ).encode()
    start_time = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.sendall(head + b"x" * 1024)
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    return {"path": path, "admin": admin, "status": int(answer.split(b" ", 2)[1]), "bytes_sent": 1024,
            "ms": round((time.perf_counter() - start_time) * 1000, 1)}  # fmt: skip


BROKEN = ["NaN", "Infinity", "-Infinity", "1e400", '"\\ud800"', '{"\\udc80": 1}', "[" * 3000 + "]" * 3000,
          '"' + "x" * 100_000 + '"', "1" * 5000]  # fmt: skip


def broken_bodies(base: str) -> Counter:
    statuses: Counter = Counter()
    with httpx.Client(timeout=60) as client:
        routes = (
            ("/events", "POST", ["user_id", "item_id", "event", "timestamp", "event_id"]),
            ("/users/U0001/render-settings", "PUT", ["strength", "brightness", "saturation"]),
        )
        for path, method, fields in routes:
            for field in fields:
                for raw in BROKEN:
                    body = "{" + f'"{field}": {raw}' + "}"
                    answer = client.request(method, base + path, content=body.encode(),
                                            headers={"Content-Type": "application/json"})  # fmt: skip
                    statuses[answer.status_code] += 1
        for raw in BROKEN:
            answer = client.post(base + "/items", data={"item_id": "BROKEN1", "attributes": raw},
                                 headers={"X-API-Key": KEY})  # fmt: skip
            statuses[answer.status_code] += 1
    return statuses


def forged(base: str) -> dict:
    answers = []
    with httpx.Client(timeout=60) as client:
        styles = [s["name"] for s in client.get(f"{base}/styles").json()][:2]
        for i, (style, strength) in enumerate((s, t) for s in styles for t in (0.25, 0.5, 0.75, 1.0)):
            params = {"style": style, "strength": strength, "renderer": "gatys"}
            url = f"{base}/items/D0007/render"
            answers.append(client.get(url, params=params, headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code)
        params = {"style": styles[0], "strength": 0.3, "renderer": "gatys"}
        admin = client.get(f"{base}/items/D0007/render", params=params, headers={"X-API-Key": KEY}).status_code
    return {"forged_clients": answers, "admin_after": admin}


def tree(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def port_answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def stop(port: int, env: dict, how: signal.Signals) -> dict:
    server = start(port, env)
    photo = io.BytesIO()
    Image.new("RGB", (160, 240), (20, 40, 160)).save(photo, "JPEG")
    for _ in range(2):
        files = {"image": ("p.jpg", photo.getvalue(), "image/jpeg")}
        httpx.post(f"http://127.0.0.1:{port}/shop-this-style", files=files, timeout=300).raise_for_status()
    processes = tree(server.pid)
    started = time.perf_counter()
    server.send_signal(how)
    while time.perf_counter() - started < 60:
        if server.poll() is not None and not any(alive(p) for p in processes) and not port_answers(port):
            break
        time.sleep(0.05)
    left = [p for p in processes if alive(p)]
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    server.wait(30)
    seconds = round(time.perf_counter() - started, 2)
    return {"signal": how.name, "processes": len(processes) + 1, "left": len(left),
            "seconds_until_none_left": seconds, "port_free": not port_answers(port)}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8767)
    parser.add_argument("--db", default="var/stylerec.db")
    parser.add_argument("--store", default="var/store")
    parser.add_argument("--index", default="var/index")
    parser.add_argument("--models", default="var/models")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="stylerec-hardening-") as work:
        env = copy_shop(args.db, args.store, args.index, args.models, Path(work)) | {
            "STYLEREC_API_KEY": KEY, "STYLEREC_UPLOADS_DIR": f"{work}/uploads", "STYLEREC_STYLES_DIR": f"{work}/styles",
            "STYLEREC_RENDER_SIZE": "64", "STYLEREC_RENDER_STEPS": "2",
        }  # fmt: skip
        base = f"http://127.0.0.1:{args.port}"
        server = start(args.port, env)
        try:
            report = {
                "announced_300MB": [
                    announced(args.port, p, a)
                    for p, a in (("/items", False), ("/items", True), ("/shop-this-style", False), ("/events", False))
                ],
                "broken_json_statuses": dict(broken_bodies(base)),
                "render_queue": forged(base),
            }
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
        report["stops"] = [stop(args.port, env, how) for how in (signal.SIGTERM, signal.SIGKILL)]
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
