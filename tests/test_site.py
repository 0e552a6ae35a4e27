"""The course's website (``make site`` -> build/site), read offline in a real browser.

The built site is served by ``python -m http.server`` on 127.0.0.1 (stopped by its PID); Debian's Chromium,
driven by Playwright, may load nothing else: every other request is blocked and recorded. For the landing
page and every lesson page this asserts: no blocked or failed request, no page error, no console error;
MathJax typeset every formula, none in error; every image loaded; no output shows a traceback or "Error
displaying widget"; no live explorer and no control outside a flipbook (a control must do something without
a kernel); and every flipbook's slider and Play button change the frame shown. A screenshot of each page
lands in test-artifacts/site_<page>.png, with its first flipbook moved to a later frame.

Skipped when Chromium, Playwright or build/site is missing, unless DIFFNLP_REQUIRE_BROWSER=1 (set by .ci/run
in CI), which makes any of them a failure. ``make test`` builds the site first (``make site``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from test_browser import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _free_port, _unavailable, _wait_until, check_flipbook
from test_site_build import LIVE_CLASSES, shown_widgets

pytestmark = [pytest.mark.site, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "build" / "site"
LESSONS = sorted(p.stem for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
# Controls a learner can operate; on a static page each must belong to a flipbook.
CONTROLS = (".widget-slider, .widget-play, .widget-dropdown, .widget-toggle-buttons, .widget-toggle-button,"
            " .widget-text, .widget-button, .widget-checkbox")


def _flipbooks_in(stem: str) -> int:
    """How many flipbooks the lesson's stored outputs display (from the notebook, not from the page)."""
    nb = json.loads((ROOT / "notebooks" / f"{stem}.ipynb").read_text())
    return sum("diffnlp-flipbook" in classes for _, _, classes in shown_widgets(nb))


@pytest.fixture(scope="module")
def server():
    if not (SITE / "index.html").exists():
        _unavailable(f"{SITE} is not built (run `make site`)")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                             "--directory", str(SITE)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        import urllib.request

        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

        def up():
            try:
                return opener.open(base + "/index.html", timeout=2).status == 200
            except OSError:
                return False

        _wait_until(up, 30, "the static server", 0.2)
        yield base
    finally:
        proc.terminate()  # stopped by its PID
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[browser]')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """One page opened offline: every request but the local server's is blocked, and every problem recorded."""

    def __init__(self, browser, base: str):
        self.context = browser.new_context(viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(30_000)
        self.problems: list[str] = []

        def route(r):
            if r.request.url.startswith(base + "/"):
                r.continue_()
            else:
                self.problems.append(f"blocked request: {r.request.url[:200]}")
                r.abort()

        self.context.route("**/*", route)
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        self.page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        self.page.on("requestfailed", lambda r: self.problems.append(f"failed request: {r.url[:200]} {r.failure}"))
        self.page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))

    def close(self):
        self.context.close()


def _common_checks(page) -> None:
    text = page.locator("body").inner_text()
    for bad in ("Traceback (most recent call last)", "Error displaying widget", "nbval"):
        assert bad not in text, f"the page shows {bad!r}"
    assert "nbval" not in page.content(), "the page carries nbval markers"
    # Every image (outputs, the visible frame of each flipbook) loaded.
    broken = page.evaluate("""async () => { const imgs = Array.from(document.images);
        await Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })));
        return imgs.filter(i => !(i.naturalWidth > 0)).map(i => i.src.slice(0, 120)); }""")
    assert not broken, f"images that did not load: {broken}"
    # MathJax typeset every formula Sphinx wrote, and none is in error.
    math = page.evaluate("""async () => { const els = document.querySelectorAll('span.math, div.math');
        if (!els.length) return {count: 0};
        if (!(window.MathJax && MathJax.startup && MathJax.startup.promise)) return {count: els.length, loaded: false};
        await MathJax.startup.promise;
        const untypeset = Array.from(els).filter(e => !e.querySelector('mjx-container'));
        return {count: els.length, loaded: true, errors: document.querySelectorAll('mjx-merror').length,
                untypeset: untypeset.map(e => e.textContent.slice(0, 80))}; }""")
    if math["count"]:
        assert math["loaded"], "the page has formulas but MathJax did not load"
        assert math["errors"] == 0, f"{math['errors']} formulas in error"
        assert not math["untypeset"], f"formulas MathJax did not typeset: {math['untypeset'][:5]}"


def test_index_links_every_lesson(server, browser):
    p = Page(browser, server)
    try:
        p.page.goto(server + "/index.html", wait_until="networkidle")
        links = p.page.eval_on_selector_all("a[href]", "as => as.map(a => a.getAttribute('href'))")
        for stem in LESSONS:
            assert any(re.search(rf"(^|/)lessons/{stem}\.html(#.*)?$", h) for h in links), f"no link to {stem}"
        body = p.page.locator("body").inner_text()
        assert "make lab" in body and "Course map" in body
        _common_checks(p.page)
        ARTIFACTS.mkdir(exist_ok=True)
        p.page.screenshot(path=str(ARTIFACTS / "site_index.png"), full_page=True)
        assert not p.problems, "\n".join(p.problems)
    finally:
        p.close()


@pytest.mark.parametrize("stem", LESSONS)
def test_lesson_page_works_offline(server, browser, stem):
    p = Page(browser, server)
    page = p.page
    try:
        page.goto(f"{server}/lessons/{stem}.html", wait_until="networkidle")
        expected = _flipbooks_in(stem)
        views = page.locator('script[type="application/vnd.jupyter.widget-view+json"]').count()
        _wait_until(lambda: page.evaluate("""() => Array.from(document.querySelectorAll('.widget-subarea'))
            .filter(e => e.children.length).length""") >= views, 30, f"all {views} widget views to render", 0.2)
        flipbooks = page.locator(".diffnlp-flipbook")
        _wait_until(lambda: flipbooks.count() == expected, 30, f"{expected} flipbooks to render", 0.2)
        for cls in LIVE_CLASSES:
            assert page.locator(f".{cls}").count() == 0, f"a live explorer ({cls}) is on the page"
        stray = page.evaluate(f"""() => Array.from(document.querySelectorAll({json.dumps(CONTROLS)}))
            .filter(e => !e.closest('.diffnlp-flipbook')).map(e => e.className)""")
        assert not stray, f"controls outside a flipbook (they would do nothing without a kernel): {stray}"
        kernel_notes = page.locator(".diffnlp-kernel-note").count()
        assert kernel_notes == expected, f"{kernel_notes} 'needs a running kernel' notes for {expected} flipbooks"
        for k in range(expected):
            check_flipbook(page, flipbooks.nth(k))
        _common_checks(page)
        if expected:
            first = flipbooks.first
            frames = int(float(first.locator(".noUi-handle").first.get_attribute("aria-valuemax"))) + 1
            check_flipbook(page, first, later=frames // 2)
            first.evaluate("el => el.scrollIntoView({block: 'center'})")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"site_{stem}.png"))
        assert not p.problems, "\n".join(p.problems)
    finally:
        p.close()
