"""Slow clients against the real web server (`cityrelay web`: gunicorn, gthread workers): bodies
that trickle in are cut off with 408 once they fall behind the minimum pace, while everybody
else is answered at once; a body larger than allowed is refused from its headers, unread."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.live_server import running_web

pytestmark = pytest.mark.e2e

GRACE_SECONDS = 2
SLOW_CLIENTS = 6


def _slow_post(host: str, port: int, answers: list[tuple[float, bytes]]) -> None:
    """A body of 1,000 bytes announced, one byte every 0.5 s sent."""
    started = time.monotonic()
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(
            b"POST /api/v1/reporters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n{"
        )
        sock.settimeout(0.5)
        answer = b""
        for _byte in range(60):
            try:
                answer = sock.recv(4096)
                break
            except TimeoutError:
                pass
            try:
                sock.sendall(b" ")
            except OSError:
                break
        took = time.monotonic() - started
        sock.settimeout(5)
        answers.append((took, answer + _rest(sock)))


def _rest(sock: socket.socket) -> bytes:
    rest = b""
    try:
        while chunk := sock.recv(4096):
            rest += chunk
    except OSError:
        pass
    return rest


@pytest.fixture(scope="module")
def web(test_settings: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    log = tmp_path_factory.mktemp("web-slow") / "web.log"
    with running_web(
        test_settings, log, CITYRELAY_SLOW_BODY_GRACE_SECONDS=str(GRACE_SECONDS)
    ) as base:
        yield base


def test_slow_bodies_are_cut_and_nobody_else_waits(web: str) -> None:
    parts = urlsplit(web)
    answers: list[tuple[float, bytes]] = []
    slow = [
        threading.Thread(target=_slow_post, args=(parts.hostname, parts.port, answers))
        for _ in range(SLOW_CLIENTS)
    ]
    for thread in slow:
        thread.start()
    time.sleep(0.5)
    waits = []
    for _ in range(10):
        started = time.monotonic()
        response = requests.post(
            f"{web}/api/v1/reporters", json={"display_name": "快递员"}, timeout=10
        )
        waits.append(time.monotonic() - started)
        assert response.status_code == 201
    for thread in slow:
        thread.join(40)
    # Everybody else is answered while the slow clients still trickle (a correctness bound,
    # far above a normal answer and far below the grace period plus a cut).
    assert max(waits) < 1.0, waits
    assert len(answers) == SLOW_CLIENTS
    for took, answer in answers:
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b"request_timeout" in answer
        assert took < GRACE_SECONDS + 3, took


def test_a_body_announced_too_large_is_refused_unread(web: str) -> None:
    parts = urlsplit(web)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(
            b"POST /api/v1/reporters HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 31457280\r\n\r\n"
        )
        answer = _rest(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"request_entity_too_large" in answer


def test_ordinary_bodies_pass_through_whole(web: str, tmp_path: Path) -> None:
    body = {"display_name": "王师傅" * 10, "occupation": "courier", "platform": "顺丰"}
    response = requests.post(f"{web}/api/v1/reporters", json=body, timeout=10)
    assert response.status_code == 201
    assert response.json()["display_name"] == "王师傅" * 10
    chunked = requests.post(
        f"{web}/api/v1/reporters",
        data=iter([b'{"display_name": ', '"李师傅"}'.encode()]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    assert chunked.status_code == 201, chunked.text
    assert chunked.json()["display_name"] == "李师傅"
