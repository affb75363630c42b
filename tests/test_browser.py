"""The built book in headless Chromium, as a reader sees it at a laptop's width (1280 px): every page of the table of
contents loads with no missing resource, no console error and no request leaving the machine; equations are typeset
by the local MathJax; every figure loads; nothing on a page scrolls sideways or sticks out of the article column
(code, outputs, equations, tables, the page itself); no line starts with the comma after an equation; no page shows
raw markup (a markdown table's pipes, reST roles, ``$$``, MyST roles, numpy reprs), an unresolved reference or a path of the machine that built it; every internal
link resolves; the results pages hold real ``<table>``s with the expected rows and a verdict in words under the
comparison tables; each notebook page's ``.ipynb`` download works offline.

Uses Debian's chromium (`/usr/bin/chromium`, installed by `make test`/`.ci/run`) through Playwright's Python API;
Playwright's own browser downloads are never used. A full-page screenshot of every page is kept in
``_build/test/screenshots/`` (a CI artifact: look at them to judge how the pages read).
"""

from __future__ import annotations

import functools
import http.server
import json
import re
import shutil
import threading
from pathlib import Path
from urllib.parse import urlparse

import pytest

from _book_build import BUILD, REPO, built_book
from rjcma.book.paths import toc_entries

CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
EQUATIONS_PAGE = "notebooks/06b_equations.html"
RESULTS_PAGE = "notebooks/11_results.html"
VIEWPORT = {"width": 1280, "height": 800}  # a laptop screen (rjcma.css widens the article column for it)
# a markdown table that was not turned into a <table>: a separator row (|---|:--:| or, after smart quotes, |—|—|)
RAW_TABLE = re.compile(r"\|\s*:?[-—–]{1,}:?\s*\|\s*:?[-—–]{1,}:?\s*\|")
RAW_ROW = re.compile(r"(?m)^\s*\|[^|\n]+\|[^|\n]+\|")
# the page's prose and rendered outputs, without code, math and tables (where pipes are legitimate)
PROSE_JS = """() => {
  const root = document.querySelector('main') || document.body;
  const c = root.cloneNode(true);
  c.querySelectorAll('pre, code, script, style, table, .cell_input, .highlight, mjx-container, .math, nav')
    .forEach(e => e.remove());
  return c.textContent;
}"""
# every block that scrolls sideways or sticks out of the article column, and the page itself
OVERFLOW_JS = """() => {
  const main = document.querySelector('main') || document.body;
  const col = document.querySelector('article.bd-article') || main;
  const right = col.getBoundingClientRect().right;
  const out = [];
  const sel = 'pre, .output, .cell_output, .math, mjx-container, table, img';
  for (const e of main.querySelectorAll(sel)) {
    if (e.closest('details:not([open]), .toggle-hidden, nav')) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0) continue;
    // inline math and inline elements only must stay inside the column (a glyph's overhang is no scrolling)
    const inline = (getComputedStyle(e).display.startsWith('inline') && e.tagName !== 'TABLE')
      || (e.tagName === 'MJX-CONTAINER' && e.getAttribute('display') !== 'true') || e.matches('span.math');
    const what = e.tagName.toLowerCase() + (e.classList.length ? '.' + e.classList[0] : '');
    const text = (e.textContent || e.getAttribute('src') || '').trim().replace(/\\s+/g, ' ').slice(0, 70);
    if (!inline && e.tagName !== 'IMG' && e.scrollWidth > e.clientWidth + 1)
      out.push(`${what} scrolls (${e.scrollWidth} > ${e.clientWidth} px): ${text}`);
    else if (r.right > right + 1)
      out.push(`${what} sticks out of the column (${Math.round(r.right)} > ${Math.round(right)} px): ${text}`);
  }
  const d = document.documentElement;
  if (d.scrollWidth > d.clientWidth + 1) out.push(`the page scrolls sideways (${d.scrollWidth} > ${d.clientWidth})`);
  return out;
}"""
# a line that starts with the punctuation after an inline equation ("step $t$, weighs" broken before the comma), or
# an inline equation on the line after its opening bracket (rjcma.book.nowrap binds them)
STRANDED_JS = """() => {
  const out = [];
  for (const m of document.querySelectorAll('main mjx-container:not([display="true"])')) {
    const host = m.closest('span.math') || m, box = m.getBoundingClientRect();
    if (box.width === 0) continue;
    const at = (n, i) => { const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1);
                           return r.getBoundingClientRect(); };
    let n = host.nextSibling;
    if (!n && host.parentElement.classList.contains('nowrap')) n = host.parentElement.nextSibling;
    if (n && n.nodeType === 3 && /^[,.;:!?)\]]/.test(n.textContent) && at(n, 0).top >= box.bottom - 2)
      out.push(`"${n.textContent.trim().slice(0, 20)}" starts a line after the equation ${m.textContent.slice(0, 30)}`);
    const p = host.previousSibling;
    if (p && p.nodeType === 3 && /[(\[]$/.test(p.textContent)
        && at(p, p.textContent.length - 1).bottom <= box.top + 2)
      out.push(`the equation ${m.textContent.slice(0, 30)} starts a line after its "("`);
  }
  return out;
}"""
# what a reader must never see in a page's text (outside code): markup that was not rendered, a numpy repr
RAW_MARKUP = re.compile(r":(mod|func|class|meth|data|attr):`|\$\$|\{(glue|cite|eq|doc|ref|numref)[:}]|\{\{|"
                        r"\\\(|\\\[")
RAW_OUTPUT = re.compile(r"np\.float(32|64)\(|<Figure size \d")  # anywhere, outputs included
# a path of the machine that built the book (anywhere in the page's text, code and outputs included)
MACHINE_PATH = re.compile(r"(?<![\w.])/(tmp|root|home|work|Users|private/var)/[\w.-]|site-packages|\.venv/lib")

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
    missing = [f"{e}.html" for e in toc_entries(REPO) if f"{e}.html" not in pages]
    assert not missing, f"pages of the table of contents not built: {missing}"
    context = browser.new_context(viewport=VIEWPORT)
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
        prose = page.evaluate(PROSE_JS)
        for m in (RAW_TABLE.search(prose), RAW_ROW.search(prose)):
            if m:
                found.append(f"raw markdown table in the text: {prose[max(0, m.start() - 40):m.end() + 40]!r}")
                break
        found += page.evaluate(OVERFLOW_JS)
        found += page.evaluate(STRANDED_JS)
        m = RAW_MARKUP.search(prose)
        if m:
            found.append(f"raw markup in the text: {prose[max(0, m.start() - 40):m.end() + 40]!r}")
        text = page.evaluate("() => (document.querySelector('main') || document.body).innerText")
        m = RAW_OUTPUT.search(text)
        if m:
            found.append(f"raw output: {text[max(0, m.start() - 40):m.end() + 40]!r}")
        m = MACHINE_PATH.search(text)
        if m:
            found.append(f"a path of the building machine: {text[max(0, m.start() - 30):m.end() + 50]!r}")
        found += _broken_links(page, host)
        if rel.startswith("notebooks/"):
            found += _download_problems(page, rel)
        page.screenshot(path=str(shots / (rel.replace("/", "__").removesuffix(".html") + ".png")), full_page=True)
        problems += [f"{rel}: {f}" for f in found]
        page.close()
    context.close()
    assert not problems, "\n".join(problems[:40])


def _broken_links(page, host: str) -> list[str]:
    """Internal links of the page (to other pages, with their anchors) that lead nowhere."""
    links = page.evaluate("""() => Array.from(document.querySelectorAll('main a[href]')).map(a => a.href)""")
    out = []
    for href in sorted(set(links)):
        url = urlparse(href)
        if url.netloc != host or not url.path.endswith(".html"):
            continue
        resp = page.request.get(href.split("#")[0])
        if resp.status != 200:
            out.append(f"link to {url.path}: HTTP {resp.status}")
        elif url.fragment and f'id="{url.fragment}"' not in resp.text():
            out.append(f"link to {url.path}#{url.fragment}: no such anchor")
    return out


def _download_problems(page, rel: str) -> list[str]:
    """The page's .ipynb download link must exist and give a notebook, from this server."""
    hrefs = page.evaluate("() => Array.from(document.querySelectorAll('a[href$=\".ipynb\"]')).map(a => a.href)")
    if not hrefs:
        return ["no .ipynb download link"]
    resp = page.request.get(hrefs[0])
    if resp.status != 200:
        return [f"download {hrefs[0]}: HTTP {resp.status}"]
    try:
        nb = json.loads(resp.text())
    except ValueError:
        return [f"download {hrefs[0]}: not JSON"]
    return [] if nb.get("nbformat") == 4 and nb.get("cells") else [f"download {hrefs[0]}: not a notebook"]


def _tables(page) -> list[list[str]]:
    """Each <table> of the page as its rows' text (cells joined by ' | ')."""
    return page.evaluate("""() => Array.from(document.querySelectorAll('main table')).map(t =>
      Array.from(t.rows).map(r => Array.from(r.cells).map(c => c.textContent.trim()).join(' | ')))""")


def test_results_pages_hold_real_tables(site, browser):
    from rjcma import paper_numbers
    from rjcma.book.citations import cite_paper_refs
    from rjcma.results_tables import FUSION_LABELS

    html, base = site
    page = browser.new_page(viewport=VIEWPORT)
    page.goto(f"{base}/{RESULTS_PAGE}", wait_until="load")
    tables = _tables(page)
    widths = page.evaluate("() => Array.from(document.images).map(i => i.naturalWidth)")
    rows = [r.replace("\u2019", "'") for t in tables for r in t]  # the book's smart quotes
    first = [r.split(" | ")[0] for r in rows]
    first += [c.split(" (")[0] for c in first if c.startswith("Fold ")]  # "Fold 1 (subject folds)"
    expected = [f"Fold {f}" + (" (official)" if f == 0 else "") for f in range(6)] + ["Mean"]
    expected += [f"l = {l_}" for l_ in (1, 2, 3, 4)]  # ours or the paper's
    expected += [cite_paper_refs(FUSION_LABELS[f]) for f in ("rjcma", "rjcma-released", "jca", "unimodal:audio")]
    first += [c.split(" · ")[0] for c in first]  # "JCA (Praveen et al. 2022) · A+V"
    expected += [cite_paper_refs(t["team"]) for t in paper_numbers.TABLE4_TEST]
    missing = [e for e in expected if e not in first]
    assert len(tables) >= 5, f"{RESULTS_PAGE}: {len(tables)} <table>(s), expected Tables 1-4 and the six-fold check"
    assert not missing, f"{RESULTS_PAGE}: rows missing from the tables: {missing}"
    fold0 = next(r for r in rows if r.startswith("Fold 0"))
    assert re.search(r"\d\.\d{3}", fold0.split(" | ")[1]), f"no number of ours in Table 1: {fold0}"
    rjcma = next(r for r in rows if r.startswith(FUSION_LABELS["rjcma"]))
    assert re.search(r"\d\.\d{3}\s*\[−?\d\.\d{2},\s−?\d\.\d{2}\]", rjcma), f"no interval in Table 2: {rjcma}"
    assert widths and min(widths) > 0, "the results chapter shows no figure"
    for rel, label, verdict in (("notebooks/08_cross_validation.html", "fold", False),
                                ("notebooks/09_ablation.html", "recursions", True),
                                ("notebooks/10_comparison.html", "method · modalities", True),
                                (RESULTS_PAGE, "method · modalities", True)):
        page.goto(f"{base}/{rel}", wait_until="load")
        heads = [t[0].split(" | ")[0] for t in _tables(page) if t]
        assert label in heads, f"{rel}: no table headed {label!r} (tables: {heads})"
        text = page.evaluate("() => document.querySelector('main').innerText")
        if verdict:  # the verdict in words under the table, written from this run's numbers
            assert "What to conclude." in text or "not among the values trained here" in text, rel
            assert re.search(r"scores −?\d\.\d{3} \(95 % interval", text) or "not among" in text, rel
    page.close()
