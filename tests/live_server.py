"""For tests that need the real server rather than the test client: `cityrelay web` (gunicorn) as
a child process on a free 127.0.0.1 port, on the tests' database and Redis; and how they drive
Debian's Chromium (never a downloaded browser) and where they leave screenshots."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from cityrelay.embedded import free_port
from tests.conftest import PROJECT_ROOT, child_env

START_TIMEOUT_S = 60
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@contextmanager
def running_web(test_settings: dict[str, Any], log_path: Path) -> Iterator[str]:
    """Yields the server's base URL once /api/v1/health answers; stops it afterwards."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cityrelay.cli", "web", "--port", str(port)],
            env=child_env(test_settings),
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_until_healthy(process, base, log_path)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_until_healthy(process: subprocess.Popen[bytes], base: str, log_path: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        assert process.poll() is None, "web server exited:\n" + log_path.read_text()
        try:
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        assert time.monotonic() < deadline, "web server not healthy:\n" + log_path.read_text()
        time.sleep(0.2)
