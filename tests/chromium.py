"""Headless Debian chromium for the browser tests: serve a folder on 127.0.0.1, load a page, read the DOM."""

from __future__ import annotations

import contextlib
import functools
import shutil
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

NODE_MODULES = Path(__file__).resolve().parent / "browser" / "node_modules"

# Flags for a closed network: without the background-networking ones chromium keeps dialling out.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--disable-extensions", "--hide-scrollbars", "--mute-audio"]


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "chromium is not installed: run .ci/run or apt-get install chromium"
    return path


def npm_file(relative: str) -> Path:
    path = NODE_MODULES / relative
    assert path.is_file(), f"{path} missing: run `npm ci` in tests/browser (make test does)"
    return path


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@contextlib.contextmanager
def serve(root: Path):
    """An HTTP server for `root` on a free 127.0.0.1 port; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_page(url: str, profile: Path, budget_ms: int = 30000, screenshot: Path | None = None,
             size: str = "1280,2400") -> subprocess.CompletedProcess:
    """Load a page headless until its virtual time runs out; stdout is the DOM, stderr the console."""
    argv = [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--virtual-time-budget={budget_ms}",
            "--enable-logging=stderr", "--v=0", f"--window-size={size}"]
    argv += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
    return subprocess.run(argv + [url], capture_output=True, text=True, timeout=180)


def console_errors(stderr: str) -> list[str]:
    """Console errors and uncaught exceptions chromium logged for the page."""
    return [line for line in stderr.splitlines()
            if "CONSOLE" in line and ("Uncaught" in line or ":ERROR:" in line or "error" in line.lower())]
