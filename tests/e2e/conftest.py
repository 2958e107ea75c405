from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.live_server import CHROMIUM, CHROMIUM_ARGS

if TYPE_CHECKING:
    from playwright.sync_api import Browser

E2E_TESTS = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every end-to-end test is ``committed``: the worker processes, servers and browsers it
    drives see only committed rows, never a test's open transaction."""
    for item in items:
        if E2E_TESTS in item.path.parents:
            item.add_marker(pytest.mark.committed)


# Module scope: its beat sweeps this run's database, so it must be gone before the tests that
# check what happens without a sweep.
@pytest.fixture(scope="module")
def live_up(test_settings: dict, tmp_path_factory: pytest.TempPathFactory):
    """`cityrelay up` on a free port, on this run's database and Redis."""
    import signal
    import subprocess
    import sys
    import time
    import urllib.request

    from cityrelay.embedded import free_port
    from tests.conftest import PROJECT_ROOT, child_env

    port = free_port()
    log_path = tmp_path_factory.mktemp("live-up") / "up.log"
    env = child_env(test_settings)
    env["PORT"] = str(port)
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cityrelay.cli", "up", "--concurrency", "1"],
            env=env,
            cwd=PROJECT_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + 90
    while b"running on" not in log_path.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(
                "cityrelay up did not start:\n" + log_path.read_text(errors="replace")
            )
        time.sleep(0.3)
    base = f"http://127.0.0.1:{port}"
    urllib.request.urlopen(f"{base}/api/v1/health", timeout=5).close()
    yield base
    process.send_signal(signal.SIGINT)
    try:
        process.wait(40)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's headless Chromium driven by Playwright, one per test module."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium`.", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
