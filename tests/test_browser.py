"""A learner's path in a real browser: JupyterLab in Debian's Chromium, driven by Playwright.

Starts JupyterLab on a free loopback port with a random token, opens notebook 01, runs all its cells
from the Run menu, then moves the slider of the NoisingExplorer widget (the element with CSS class
``diffnlp-noising-explorer``: an ipywidgets IntSlider, rendered by noUiSlider, and an ipywidgets Image)
and checks that the image is redrawn, then moves the flipbook under it (slider keys and Play) and checks that
the frame shown changes. Screenshots land in test-artifacts/browser_explorer.png and browser_flipbook.png.

Skipped when Chromium or Playwright is missing, unless DIFFNLP_REQUIRE_BROWSER=1 (set by .ci/run in CI),
which makes a missing browser a failure. DIFFNLP_BROWSER_NOTEBOOK names another notebook to drive
(its folder is copied as the server's root); DIFFNLP_BROWSER_RUN_TIMEOUT caps "Run All" (seconds).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = Path(os.environ.get("DIFFNLP_BROWSER_NOTEBOOK") or ROOT / "notebooks" / "01_the_big_picture.ipynb")
CHROMIUM = os.environ.get("DIFFNLP_CHROMIUM", "/usr/bin/chromium")
REQUIRE_BROWSER = os.environ.get("DIFFNLP_REQUIRE_BROWSER", "") == "1"
ARTIFACTS = ROOT / "test-artifacts"
EXPLORER = ".diffnlp-noising-explorer"  # the container of the slider and the image
RUN_TIMEOUT_S = float(os.environ.get("DIFFNLP_BROWSER_RUN_TIMEOUT", "360"))  # notebook 01 trains ~60 s
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# JupyterLab user settings: no news/update pop-up, and every cell kept in the DOM (no windowing), so the
# "[*]" prompts of all cells can be read.
LAB_SETTINGS = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}

# Loopback requests never go through a proxy.
_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _unavailable(reason: str) -> None:
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (DIFFNLP_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get_json(url: str, timeout: float = 5.0):
    with _http.open(url, timeout=timeout) as response:
        return json.loads(response.read().decode())


class Lab:
    """A JupyterLab server started for one test; stopped by its PID."""

    def __init__(self, tmp: Path, notebook: Path, log_path: Path):
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        self.root_dir = tmp / "notebooks"
        shutil.copytree(
            notebook.parent, self.root_dir, ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__")
        )
        settings = tmp / "lab-settings"
        for name, value in LAB_SETTINGS.items():
            path = settings / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(value))
        env = dict(os.environ)
        env.pop("MPLBACKEND", None)  # the kernel's inline backend, as for a learner
        env.update(
            JUPYTER_CONFIG_DIR=str(tmp / "config"),
            JUPYTER_RUNTIME_DIR=str(tmp / "runtime"),
            JUPYTER_TOKEN=self.token,  # in the environment, not on the command line
            JUPYTER_PLATFORM_DIRS="1",
            IPYTHONDIR=str(tmp / "ipython"),
            DIFFNLP_DEVICE="cpu",
        )
        env.setdefault("DIFFNLP_THREADS", "2")
        cmd = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--ServerApp.root_dir={self.root_dir}",
            f"--LabApp.user_settings_dir={settings}",
            f"--LabApp.workspaces_dir={tmp / 'workspaces'}",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path = log_path
        self._log = open(log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=tmp)

    def api(self, path: str):
        return _get_json(f"{self.base}{path}?token={self.token}")

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                self.api("/api/status")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.25)
        raise AssertionError(f"JupyterLab did not answer /api/status within {timeout} s:\n{self.log_tail()}")

    def kernels(self) -> list[dict]:
        return self.api("/api/kernels")

    def log_tail(self, n: int = 4000) -> str:
        self._log.flush()
        return self.log_path.read_bytes()[-n:].decode(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: the server shuts its kernels down
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log.close()


def _wait_until(predicate, timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _busy_prompts(page) -> int:
    """Cells whose prompt shows [*] (running or queued)."""
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.jp-Notebook .jp-InputPrompt'))"
        ".filter(e => e.textContent.includes('*')).length"
    )


def _executed_prompts(page) -> int:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.jp-Notebook .jp-InputPrompt'))"
        ".filter(e => /\\[\\d+\\]/.test(e.textContent)).length"
    )


def _tracebacks(page) -> list[str]:
    return page.evaluate(
        "() => Array.from(document.querySelectorAll('.jp-OutputArea-output'))"
        ".map(e => e.innerText).filter(t => t.includes('Traceback (most recent call last)'))"
    )


# ---- flipbooks (also used by test_site.py): frame k of a flipbook carries the class diffnlp-frame-k
def _frame_shown(flipbook) -> int:
    """The index k of the frame a flipbook shows (its frame widget carries the class diffnlp-frame-k)."""
    k = flipbook.evaluate("""fb => { const f = fb.querySelector('[class*="diffnlp-frame-"]');
        if (!f) return -1; const m = f.className.match(/diffnlp-frame-(\\d+)/); return m ? Number(m[1]) : -1; }""")
    return int(k)


def _frame_ready(flipbook, k: int) -> bool:
    """Frame k is shown and, if it has pictures, they have loaded."""
    return flipbook.evaluate("""(fb, k) => { const f = fb.querySelector('.diffnlp-frame-' + k); if (!f) return false;
        return Array.from(f.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0); }""", k)


def _press(page, handle, keys):
    handle.focus()
    for key in keys:
        page.keyboard.press(key)
        time.sleep(0.05)


def check_flipbook(page, flipbook, later: int | None = None) -> dict:
    """Slider (keyboard: End, then Home) and Play must change the frame shown; ``later``: leave the flipbook at
    that frame (for the screenshot)."""
    flipbook.scroll_into_view_if_needed()
    handle = flipbook.locator(".noUi-handle").first
    last = int(float(handle.get_attribute("aria-valuemax")))
    _wait_until(lambda: _frame_shown(flipbook) == 0, 10, "the flipbook's first frame", 0.1)
    _press(page, handle, ["End"])
    _wait_until(lambda: _frame_ready(flipbook, last), 10, f"the slider's End key to show frame {last}", 0.1)
    _press(page, handle, ["Home"])
    _wait_until(lambda: _frame_ready(flipbook, 0), 10, "the slider's Home key to show frame 0", 0.1)
    buttons = flipbook.locator(".widget-play button")
    buttons.first.click()                                   # play
    _wait_until(lambda: _frame_shown(flipbook) >= min(2, last), 15, "Play to move the flipbook on", 0.1)
    buttons.nth(1).click()                                  # stop: back to the start
    _wait_until(lambda: _frame_shown(flipbook) == 0, 10, "Stop to show frame 0", 0.1)
    if later is not None:
        _press(page, handle, ["ArrowRight"] * later)
        _wait_until(lambda: _frame_ready(flipbook, later), 10, f"frame {later}", 0.1)
    return {"frames": last + 1}



def test_noising_explorer_slider_redraws_image_in_chromium(tmp_path):
    if not Path(CHROMIUM).exists():
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[browser]')")
    if not NOTEBOOK.exists():
        pytest.skip(f"{NOTEBOOK} does not exist yet")

    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "browser_failure.png").unlink(missing_ok=True)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    lab = Lab(tmp_path, NOTEBOOK, ARTIFACTS / "browser_jupyterlab.log")
    try:
        lab.wait_ready()
        timings["server_ready"] = time.monotonic() - t0
        with sync_playwright() as p:
            context = p.chromium.launch_persistent_context(
                user_data_dir=str(tmp_path / "chromium-profile"),
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
                viewport={"width": 1400, "height": 1000},
            )
            page = context.pages[0] if context.pages else context.new_page()
            page.set_default_timeout(60_000)
            try:
                _drive(page, lab, timings, t0)
            except BaseException:
                page.screenshot(path=str(ARTIFACTS / "browser_failure.png"))
                raise
            finally:
                context.close()
    except BaseException:
        print(f"--- JupyterLab log (tail) ---\n{lab.log_tail()}")
        raise
    finally:
        lab.stop()
        print("browser test timings (s):", json.dumps({k: round(v, 1) for k, v in timings.items()}))


def _drive(page, lab: Lab, timings: dict, t0: float) -> None:
    page.goto(f"{lab.base}/lab/tree/{NOTEBOOK.name}?token={lab.token}")
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(state="visible")

    # A fresh kernel, connected to the page and idle.
    def kernel_connected_idle():
        ks = lab.kernels()
        return ks and all(k.get("connections", 0) >= 1 and k.get("execution_state") == "idle" for k in ks)

    _wait_until(kernel_connected_idle, 120, "a connected, idle kernel")
    timings["kernel_idle"] = time.monotonic() - t0

    # Run > Run All Cells, as a learner would.
    page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
    run_all = page.locator(".lm-Menu .lm-Menu-item").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))
    )
    run_all.wait_for(state="visible")
    assert "lm-mod-disabled" not in (run_all.get_attribute("class") or ""), "Run All Cells is disabled"
    run_all.click()
    t_run = time.monotonic()

    _wait_until(lambda: _executed_prompts(page) > 0 or _busy_prompts(page) > 0, 60, "the first cell to start")

    def all_done():
        idle = all(k.get("execution_state") == "idle" for k in lab.kernels())
        return idle and _busy_prompts(page) == 0

    stable = 0

    def done_and_stable():  # idle with no [*] on three polls in a row (the kernel idles between cells)
        nonlocal stable
        stable = stable + 1 if all_done() else 0
        return stable >= 3

    _wait_until(done_and_stable, RUN_TIMEOUT_S, "Run All Cells to finish (kernel idle, no [*] prompt)", 1.0)
    timings["run_all"] = time.monotonic() - t_run
    errors = _tracebacks(page)
    assert not errors, "a cell raised:\n" + "\n\n".join(errors)

    # The explorer: a container with class diffnlp-noising-explorer holding a slider and an <img>.
    explorer = page.locator(EXPLORER).first
    explorer.wait_for(state="visible", timeout=30_000)
    explorer.scroll_into_view_if_needed()
    handle = explorer.locator(".noUi-handle").first
    image = explorer.locator("img").first
    handle.wait_for(state="visible")
    image.wait_for(state="visible")
    _wait_until(lambda: image.get_attribute("src"), 30, "the image to have a src")
    src_before = image.get_attribute("src")
    png_before = image.screenshot()

    t_slide = time.monotonic()
    now, top = handle.get_attribute("aria-valuenow"), handle.get_attribute("aria-valuemax")
    at_max = now is not None and top is not None and float(now) >= float(top)
    handle.focus()
    for key in ["Home"] if at_max else ["ArrowRight"] * 3 + ["PageUp"] * 3 + ["End"]:
        page.keyboard.press(key)
        time.sleep(0.1)

    def src_changed():
        return image.get_attribute("src") != src_before

    try:
        _wait_until(src_changed, 30, "the image to change after the slider's keys")
    except AssertionError:  # keyboard not taken: drag the handle along the track instead
        track = explorer.locator(".noUi-target").first.bounding_box()
        box = handle.bounding_box()
        assert track and box, "slider has no layout box"
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        page.mouse.down()
        target_x = track["x"] + (0.2 if at_max else 0.8) * track["width"]
        page.mouse.move(target_x, box["y"] + box["height"] / 2, steps=10)
        page.mouse.up()
        _wait_until(src_changed, 60, "the image to change after dragging the slider")

    # Let the kernel work through the queued slider values: idle, and the same src for two polls.
    last = {"src": None}

    def settled():
        src, idle = image.get_attribute("src"), all(k.get("execution_state") == "idle" for k in lab.kernels())
        same, last["src"] = src == last["src"], src
        return idle and same

    _wait_until(settled, 60, "the kernel to finish redrawing", 1.0)
    png_after = _wait_until(lambda: (png := image.screenshot()) != png_before and png, 15, "new image pixels")
    timings["slider_to_new_image"] = time.monotonic() - t_slide
    assert png_after != png_before

    (ARTIFACTS / "browser_explorer_image_before.png").write_bytes(png_before)
    (ARTIFACTS / "browser_explorer_image_after.png").write_bytes(png_after)
    explorer.evaluate("el => el.scrollIntoView({block: 'start'})")  # the slider at the top of the view
    page.screenshot(path=str(ARTIFACTS / "browser_explorer.png"), full_page=True)
    print(f"slider moved {handle.get_attribute('aria-valuenow')}; screenshot: {ARTIFACTS / 'browser_explorer.png'}")

    # The explorer's flipbook, in JupyterLab with a kernel: its links run in the browser too.
    flipbook = page.locator(".diffnlp-flipbook").first
    flipbook.wait_for(state="visible", timeout=30_000)
    t_flip = time.monotonic()
    check_flipbook(page, flipbook, later=5)
    timings["flipbook"] = time.monotonic() - t_flip
    flipbook.screenshot(path=str(ARTIFACTS / "browser_flipbook.png"))
