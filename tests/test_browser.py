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

import json
import os
import re
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
    settings = root / "lab-settings"  # every cell in the page (no windowing), no news pop-up
    for name, value in (("notebook-extension/tracker", {"windowingMode": "none"}),
                        ("apputils-extension/notification",
                         {"fetchNews": "false", "checkForUpdates": False})):
        path = settings / "@jupyterlab" / f"{name}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(value))
    repository = str(NOTEBOOK_DIR.parent)  # the kernels import the package under test
    env = {**os.environ, "SEGNAS_QUICK": "1", "SEGNAS_QUIET": "1",
           "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "PYTHONPATH": os.pathsep.join(filter(None, [repository, os.environ.get("PYTHONPATH")]))}
    env.setdefault("SEGNAS_CACHE", str(tmp_path_factory.mktemp("cache")))
    log = open(root / "jupyter.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--allow-root"],  # CI containers run as root
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


try:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
except ImportError:  # the tests skip without playwright
    PlaywrightTimeout = TimeoutError


def _run_all(page, name: str) -> None:
    """Run > Run All Cells, then wait until every code cell has its execution count. Run All stops
    at a failing cell: the cells after it keep an empty prompt, and the failing one is named."""
    # the copies hold their saved outputs and execution counts: clear them, so that every count
    # seen below comes from this run
    page.locator(".lm-MenuBar-itemLabel", has_text="Edit").first.click()
    page.get_by_role("menuitem", name="Clear Outputs of All Cells", exact=True).click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')]"
        ".every(p => !/\\d/.test(p.textContent))", timeout=30_000)
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    started = time.monotonic()
    while True:
        prompts = page.locator(".jp-CodeCell .jp-InputArea-prompt").all_inner_texts()
        if prompts and all(re.fullmatch(r"\[\d+\]:", text.strip()) for text in prompts):
            return
        running = any("*" in text for text in prompts)
        if not running and time.monotonic() - started > 15:
            stopped = next(i for i, text in enumerate(prompts) if not re.search(r"\d", text))
            cells = page.locator(".jp-CodeCell")
            shot = Path(os.environ.get("SEGNAS_BROWSER_SHOTS", "/tmp")) / f"browser_{name}.png"
            cells.nth(max(stopped - 1, 0)).screenshot(path=str(shot))
            pytest.fail(f"(screenshot: {shot}) "f"{name}: Run All stopped at code cell {stopped}: "
                        f"{cells.nth(max(stopped - 1, 0)).inner_text()[-1500:]}")
        assert time.monotonic() - started < RUN_SECONDS, f"{name}: Run All took over {RUN_SECONDS} s"
        time.sleep(2)


def _figure_source(widget) -> str:
    images = widget.locator(".widget-output img, .jp-OutputArea-output img")
    return images.first.get_attribute("src") if images.count() else ""


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_widgets_render_and_a_slider_redraws_the_figure(lab, browser, name):
    base, token = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/tree/{name}?token={token}&reset")
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    select = page.locator(".jp-Dialog button", has_text="Select")  # "Select Kernel", if asked
    try:
        select.wait_for(timeout=10_000)
        select.click()
    except PlaywrightTimeout:
        pass  # the notebook's kernel started by itself
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=120_000)
    _run_all(page, name)
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
    handle.focus()  # one step towards the other end (a slider may start at its maximum)
    at_end = handle.get_attribute("aria-valuenow") == handle.get_attribute("aria-valuemax")
    handle.press("ArrowLeft" if at_end else "ArrowRight")
    page.wait_for_function(
        "([el, before]) => { const img = el.querySelector('.widget-output img, "
        ".jp-OutputArea-output img'); return img && img.getAttribute('src') !== before; }",
        arg=[widget.element_handle(), before], timeout=60_000)
    page.close()
