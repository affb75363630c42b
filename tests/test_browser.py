"""The built book in headless Chromium: every page loads with no missing resource, no console error, no request
leaving the machine; equations are typeset by the local MathJax and every figure loads (issue 7 §7).

Uses Debian's chromium (`/usr/bin/chromium`, installed by `make test`/`.ci/run`) through Playwright's Python API;
Playwright's own browser downloads are never used. Screenshots go to ``_build/test/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from _book_build import BUILD, built_book

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
EQUATIONS_PAGE = "notebooks/06b_equations.html"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); CI installs it"),
]


@pytest.fixture(scope="module")
def site(tiny_cfg, tiny_store):
    book = built_book(tiny_cfg, tiny_store)
    if book.build_error:
        pytest.fail(f"the book did not build: {book.build_error}")
    html = book.paths.html

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *a):  # noqa: D401 - silence the access log
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield html, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


def _pages(html: Path) -> list[str]:
    return sorted(str(p.relative_to(html)) for p in html.rglob("*.html") if "_static" not in p.parts
                  and "_sources" not in p.parts)


def test_every_page_loads_offline(site, browser):
    html, base = site
    host = urlparse(base).netloc
    shots = BUILD / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    pages = _pages(html)
    assert "book/intro.html" in pages and EQUATIONS_PAGE in pages
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    for rel in pages:
        page = context.new_page()
        found: list[str] = []

        def route(r, found=found):  # anything not served by our server is an error, and never fetched
            if urlparse(r.request.url).netloc != host and not r.request.url.startswith(("data:", "blob:")):
                found.append(f"external request {r.request.url}")
                return r.abort()
            return r.continue_()

        page.route("**/*", route)
        page.on("requestfailed", lambda req, found=found: found.append(f"failed {req.url}: {req.failure}"))
        page.on("response", lambda resp, found=found: resp.status >= 400 and found.append(f"HTTP {resp.status} {resp.url}"))
        page.on("console", lambda msg, found=found: msg.type == "error" and found.append(f"console: {msg.text}"))
        page.on("pageerror", lambda exc, found=found: found.append(f"page error: {exc}"))
        page.goto(f"{base}/{rel}", wait_until="load")
        n_math = page.locator(".math").count()
        if n_math:
            try:
                page.wait_for_selector("mjx-container", state="attached", timeout=60000)
                page.wait_for_function(
                    "() => window.MathJax && MathJax.startup && MathJax.startup.promise"
                    " && MathJax.startup.promise.then(() => true)", timeout=60000)
            except Exception as e:  # noqa: BLE001
                found.append(f"MathJax did not typeset {n_math} math element(s): {e}")
            typeset = page.locator("mjx-container").count()
            if typeset < n_math:
                found.append(f"{n_math} math elements but {typeset} mjx-container(s)")
            if page.locator("mjx-merror").count():
                found.append(f"{page.locator('mjx-merror').count()} MathJax error(s) in equations")
        if rel == EQUATIONS_PAGE and page.locator("mjx-container").count() == 0:
            found.append("the equations page has no typeset equation")
        page.wait_for_load_state("networkidle")
        images = page.evaluate(
            "() => Array.from(document.images).map(i => [i.getAttribute('src') || '', i.complete, i.naturalWidth])")
        for src, complete, width in images:
            if not complete or width == 0:
                found.append(f"image not loaded: {src[:80]}")
        page.screenshot(path=str(shots / (rel.replace("/", "__").removesuffix(".html") + ".png")), full_page=True)
        problems += [f"{rel}: {f}" for f in found]
        page.close()
    context.close()
    assert not problems, "\n".join(problems[:40])


def test_figures_are_present_on_result_pages(site, browser):
    html, base = site
    page = browser.new_page()
    page.goto(f"{base}/notebooks/13_results.html", wait_until="load")
    widths = page.evaluate("() => Array.from(document.images).map(i => i.naturalWidth)")
    page.close()
    assert widths and min(widths) > 0, "the results chapter shows no figure"
