"""The browser explorer (examples/web) in Debian's headless Chromium, for tests and benchmarks.

Debian's `chromium` and its `chromedriver` (`make web-deps`) are driven by
Selenium; nothing is downloaded. The page and the bundle are served from
127.0.0.1 by examples/web/serve.py, with the headers that let onnxruntime-web
use two WebAssembly threads.
"""

import contextlib
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from tests.support.servers import free_port

EXPLORER = Path(__file__).resolve().parents[2] / "examples" / "web"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
# Runs `body` (JavaScript, with `vae` and `args`) once the page has loaded the bundle.
_IN_PAGE = """
const done = arguments[arguments.length - 1];
const args = arguments;
window.kerasVae.ready
  .then(async (vae) => { %s })
  .then((value) => done({ ok: true, value }), (error) => done({ ok: false, error: String(error) }));
"""


@contextlib.contextmanager
def headless_chromium():
    """Debian's Chromium, headless, under Selenium; yields the WebDriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} missing: run `make web-deps`.")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_script_timeout(300)
    driver.set_window_size(1200, 1600)
    try:
        yield driver
    finally:
        driver.quit()


@contextlib.contextmanager
def serving_explorer(bundle, log_path, compare=None, timeout=30):
    """Serves the explorer page and `bundle` (and a `compare` bundle) on a free port;
    yields the page's URL."""
    if not (EXPLORER / "node_modules" / "onnxruntime-web").is_dir():
        raise RuntimeError(f"onnxruntime-web is missing from {EXPLORER}: run `make web-deps`.")
    port = free_port()
    command = [sys.executable, str(EXPLORER / "serve.py"), str(bundle), "--port", str(port)]
    if compare is not None:
        command += ["--compare", str(compare)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/" + ("?compare=compare/" if compare is not None else "")
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                manifest = f"http://127.0.0.1:{port}/bundle/manifest.json"
                with urllib.request.urlopen(manifest, timeout=5):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(
                        f"The explorer's server did not start: {Path(log_path).read_text()}"
                    ) from None
                time.sleep(0.1)
        yield url
    finally:
        process.kill()
        process.wait()


def run_in_page(driver, url, body, *args):
    """Opens `url` and runs `body` there once the bundle is loaded.

    Returns:
        `{"ok": True, "value": ...}`, or `{"ok": False, "error": ...}` when the
        page could not load the bundle or `body` failed.
    """
    driver.get(url)
    return run_in_open_page(driver, body, *args)


def run_in_open_page(driver, body, *args):
    """Runs `body` in the page `driver` shows, as `run_in_page` does, without reloading it."""
    return driver.execute_async_script(_IN_PAGE % body, *args)
