"""Widgets in a real browser: JupyterLab on 127.0.0.1, notebooks 01, 05 and 06 run with "Run All"
in Chromium driven by Playwright, every widget rendered (no "Error displaying widget"), and moving a
slider changes the figure.

Run with ``pytest -m browser``. It needs the ``playwright`` Python package (the ``dev`` extra) and a
system Chromium (Debian: ``apt-get install -y chromium``; ``.ci/run`` installs it): Playwright is
pointed at that executable and never downloads a browser. Without either, the test is skipped and
says which is missing. The notebooks run in quick mode (``SEGNAS_QUICK=1``) with the test session's
cache, so they reuse what ``test_notebooks.py`` computed.
"""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow]

NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ["01_data.ipynb", "05_latency.ipynb", "06_search.ipynb"]
RUN_SECONDS = 600     # one notebook's Run All in quick mode (minutes with a cold cache)


def chromium_path() -> str | None:
    """The system Chromium (``$SEGNAS_CHROMIUM``, else ``chromium`` / ``chromium-browser`` on PATH)."""
    candidates = [os.environ.get("SEGNAS_CHROMIUM"), shutil.which("chromium"),
                  shutil.which("chromium-browser"), shutil.which("google-chrome")]
    return next((c for c in candidates if c and Path(c).exists()), None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 serving copies of the notebooks -> (base url, token)."""
    pytest.importorskip("playwright.sync_api", reason="pip install playwright (the dev extra)")
    if chromium_path() is None:
        pytest.skip("no system Chromium: apt-get install -y chromium (or set SEGNAS_CHROMIUM); "
                    "Playwright is never allowed to download one")
    root = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        shutil.copy(NOTEBOOK_DIR / name, root / name)
    port, token = _free_port(), "segnas-browser-test"
    env = {**os.environ, "SEGNAS_QUICK": "1", "SEGNAS_QUIET": "1", "JUPYTER_PLATFORM_DIRS": "1"}
    env.setdefault("SEGNAS_CACHE", str(tmp_path_factory.mktemp("cache")))
    log = open(root / "jupyter.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={root}"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"JupyterLab did not start: {(root / 'jupyter.log').read_text()[-2000:]}")
                time.sleep(0.5)
        yield base, token
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), headless=True,
                                              args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


def _run_all(page) -> None:
    """Run > Run All Cells, then wait until no cell is queued or running."""
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    page.wait_for_function(
        "() => document.querySelectorAll('.jp-InputPrompt').length > 0 && "
        "[...document.querySelectorAll('.jp-InputPrompt')].some(p => p.textContent.includes('*'))",
        timeout=60_000)
    page.wait_for_function(
        "() => ![...document.querySelectorAll('.jp-InputPrompt')]"
        "  .some(p => p.textContent.includes('*'))", timeout=RUN_SECONDS * 1000, polling=1000)


def _figure_source(widget) -> str:
    images = widget.locator(".widget-output img, .jp-OutputArea-output img")
    return images.first.get_attribute("src") if images.count() else ""


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_widgets_render_and_a_slider_redraws_the_figure(lab, browser, name):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/{name}?token={token}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    _run_all(page)
    text = page.locator(".jp-Notebook").inner_text()
    assert "Error displaying widget" not in text
    assert "Traceback" not in text, f"{name}: a cell failed in the browser"
    widgets = page.locator(".jp-OutputArea-output .jupyter-widgets.widget-vbox, "
                           ".jp-OutputArea-output .widget-vbox")
    assert widgets.count() > 0, f"{name}: no widget rendered"
    # the first widget with a slider: move it one step, the figure below it must change
    sliders = page.locator(".widget-vbox:has(.widget-slider):has(img)")
    assert sliders.count() > 0, f"{name}: no widget with a slider and a figure"
    widget = sliders.first
    widget.scroll_into_view_if_needed()
    before = _figure_source(widget)
    assert before, f"{name}: the widget shows no figure"
    handle = widget.locator(".widget-slider .noUi-handle").first
    handle.focus()
    handle.press("ArrowRight")
    page.wait_for_function(
        "([el, before]) => { const img = el.querySelector('.widget-output img, "
        ".jp-OutputArea-output img'); return img && img.getAttribute('src') !== before; }",
        arg=[widget.element_handle(), before], timeout=60_000)
    page.close()
