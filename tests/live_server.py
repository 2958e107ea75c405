"""For tests that need the real server rather than the test client: `cityrelay web` (gunicorn) as
a child process on a free 127.0.0.1 port, on the tests' database and Redis; how they drive
Debian's Chromium (never a downloaded browser), where they leave screenshots, and the check every
page's browser test runs: no unfilled ``{…}`` placeholder where a person can see it."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cityrelay.embedded import free_port
from tests.conftest import PROJECT_ROOT, child_env

if TYPE_CHECKING:
    from playwright.sync_api import Page

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
def running_web(test_settings: dict[str, Any], log_path: Path, **env: str) -> Iterator[str]:
    """Yields the server's base URL once /api/v1/health answers; stops it afterwards. ``env``
    adds to or overrides the server's environment."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "cityrelay.cli", "web", "--port", str(port)],
            env=child_env(test_settings, **env),
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


# ---------- what a person sees: no unfilled placeholders ----------

# A translation's parameter ("最多 {max} 张") or a template expression ("{{ max_photos }}") that
# reached the page instead of its value. JSON ({"a": 1}) and empty braces do not match.
UNFILLED_PLACEHOLDER = re.compile(r"\{\{?\s*[A-Za-z_][\w.]*\s*\}\}?")
# Attributes a browser shows (placeholder, title tooltips) or reads out (aria-*, alt).
SEEN_ATTRIBUTES = (
    "placeholder",
    "title",
    "alt",
    "aria-label",
    "aria-description",
    "aria-roledescription",
)
_SEEN_TEXT = """attributes => {
    const seen = [["<title>", document.title], ["text", document.body.innerText]];
    const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "");
    for (const el of document.querySelectorAll("*")) {
        for (const attribute of attributes) {
            const value = el.getAttribute(attribute);
            if (value) {
                seen.push([name(el) + "[" + attribute + "]", value]);
            }
        }
        if (el.matches("input[type=submit], input[type=button], input[type=reset]") && el.value) {
            seen.push([name(el) + "[value]", el.value]);
        }
    }
    return seen;
}"""


def unfilled_placeholders(page: Page, allowed: Iterable[str] = ()) -> list[str]:
    """Every unfilled ``{…}`` placeholder in what the page shows now: its visible text
    (``document.body.innerText``), its title, and the attributes people see or hear on any
    element. ``allowed`` are exact strings that rightly hold braces (an OpenAPI path template on
    /docs), taken out before looking. Each finding names where it is, with some context."""
    found = []
    for where, raw in page.evaluate(_SEEN_TEXT, list(SEEN_ATTRIBUTES)):
        # Swagger UI breaks long paths with zero-width spaces
        text = raw.replace("\u200b", "")
        for exact in allowed:
            text = text.replace(exact, "")
        for match in UNFILLED_PLACEHOLDER.finditer(text):
            context = text[max(0, match.start() - 30) : match.end() + 30].replace("\n", " ")
            found.append(f"{where}: {match.group(0)} in …{context}…")
    return found


def assert_no_unfilled_placeholders(page: Page, moment: str, allowed: Iterable[str] = ()) -> None:
    """Fails naming ``moment`` (what the page was showing) and each placeholder left unfilled."""
    found = unfilled_placeholders(page, allowed)
    assert not found, f"unfilled placeholders on {page.url} ({moment}):\n" + "\n".join(found)
