"""The web page in a real browser: headless Chromium (the system's, nothing is downloaded) driven by Playwright
loads the page, sees a shopper's feed and their pick re-rendered in their style (labelled), adjusts it, likes the
style and sees products in it, says "not for me" and sees them go, opens a feed card in the shopper view, uploads a
photo to shop its style and sees it beside the results; the header fits a phone's screen."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading
from pathlib import Path

import httpx
import pytest
import uvicorn
from conftest import wait_until

from recsys.service.app import create_app

REPO = Path(__file__).resolve().parents[1]
# Every wait of the page (a selector, a function) has this ceiling: on a busy machine a render or an upload's
# embedding takes far longer than on a quiet one; a page that works waits for the event, never for the ceiling.
BROWSER_CEILING_MS = 600_000


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="module")
def server(service_settings, tmp_path_factory):
    # its own copy of the store: the page's likes and adjustments must not leak into other tests
    root = tmp_path_factory.mktemp("browser")
    source, copy = sqlite3.connect(service_settings.db), sqlite3.connect(root / "shop.db")
    source.backup(copy)
    source.close()
    copy.close()
    service_settings = service_settings.model_copy(update={"db": root / "shop.db"})
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(service_settings), host="127.0.0.1", port=port, log_level="warning")
    instance = uvicorn.Server(config)
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    wait_until(lambda: instance.started, f"the test server on port {port} to start", every=0.1)
    yield base
    instance.should_exit = True
    thread.join(timeout=10)


def test_page_feed_and_upload(server, demo_shop, tmp_path):
    playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    chromium = _chromium()
    if chromium is None:
        pytest.skip("no system Chromium (apt install chromium)")
    catalog_dir, _, _ = demo_shop
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 1400})
        page.set_default_timeout(BROWSER_CEILING_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.goto(server)
        page.wait_for_selector("#feed .card")
        assert page.locator("#feed .card").count() == 12
        assert "preferred styles" in page.locator("#styles-line").inner_text()
        assert httpx.get(f"{server}/health").json()["renders_pending"] == 0  # no render starts on page load

        # the pick in the shopper's style: a fast render, no job to wait for
        page.wait_for_selector("#restyle img.rendered")
        first = page.locator("#restyle img.rendered").get_attribute("src")
        page.eval_on_selector("#adj-brightness", "e => { e.value = '1.3'; e.dispatchEvent(new Event('change')); }")
        page.wait_for_function(f"document.querySelector('#restyle img.rendered')?.src !== {first!r}")
        user = page.locator("#shopper").input_value()
        assert httpx.get(f"{server}/users/{user}/render-settings").json()["brightness"] == 1.3  # remembered
        page.click("#like")
        page.wait_for_selector("#liked-items .card")
        assert page.locator("#liked-items .card").count() > 0
        assert page.locator("#liked-items .card .reason").first.inner_text() == "in the style you liked"
        style = page.locator("#style-choices button.current").inner_text()
        assert httpx.get(f"{server}/users/{user}/styles").json()[0]["name"] == style
        page.wait_for_selector("#like.pressed")  # the state shows on the button
        if os.environ.get("STYLEREC_SAVE_SCREENSHOT"):  # the loop: the labelled pick, the buttons, the liked block
            page.locator("#view-shopper").screenshot(path=str(REPO / "docs" / "style_loop.png"))
        # the original and the restyle are labelled
        captions = page.locator("#restyle figcaption").all_inner_texts()
        assert captions[0] == "original" and captions[1].startswith("restyled: ")

        # the latest word wins: "not for me" after the like hides the liked block and ranks the style last
        page.click("#dislike")
        page.wait_for_selector("#liked-block", state="hidden")
        page.wait_for_selector("#dislike.pressed, #style-choices button.current")
        ranked = httpx.get(f"{server}/users/{user}/styles", params={"k": 50}).json()
        assert ranked[-1]["name"] == style and ranked[-1]["state"] == "disliked"
        assert "noted: not" in page.locator("#loop-status").inner_text()

        # a feed card opens the product in the shopper view, with its same-style products
        page.locator("#feed .card").first.click()
        page.wait_for_selector("#product-similar .card")
        assert page.locator("#view-shopper").is_visible() and not page.locator("#view-merch").is_visible()
        reasons = set(page.locator("#product-similar .card .reason").all_inner_texts())
        assert reasons and all(r.startswith("same style as") and "photo" not in r for r in reasons)

        page.set_input_files("#upload", str(catalog_dir / "images" / "D0012.jpg"))
        page.click("#upload-form button")
        page.wait_for_selector("#upload-results .card")
        assert page.locator("#upload-results .card").first.get_attribute("data-item-id") == "D0012"
        assert page.locator("#upload-preview").is_visible()  # the shopper's photo beside its results
        assert page.locator("#upload-photo").get_attribute("src").startswith("blob:")
        shot = REPO / "docs" / "web_page.png" if os.environ.get("STYLEREC_SAVE_SCREENSHOT") else tmp_path / "page.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000 and not errors, errors

        # a phone-sized screen: the header fits, nothing scrolls sideways
        phone = browser.new_page(viewport={"width": 375, "height": 800})
        phone.set_default_timeout(BROWSER_CEILING_MS)
        phone.goto(server)
        phone.wait_for_selector("#feed .card")
        width = phone.evaluate("document.documentElement.scrollWidth")
        header = phone.evaluate("document.querySelector('header').scrollWidth")
        assert width <= 375 and header <= 375, (width, header)
        assert httpx.get(f"{server}/favicon.ico").status_code == 200
        browser.close()
