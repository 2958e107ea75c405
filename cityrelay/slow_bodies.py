"""Request bodies that trickle in are cut off, so that a few slow clients cannot hold every web
thread: under gunicorn the body is read before the app runs, at no less than a minimum average
rate after a grace period, or the request is answered 408 and its connection closed.

A phone on a bad network sends a 200 KB photo in seconds; one byte every five seconds is not a
phone. A thread blocked in ``recv`` cannot watch its own clock, so one watchdog thread per
process shuts the reading side of a socket that falls behind, which ends the blocked read.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

READ_SIZE = 16 * 1024
# Bodies up to this size stay in memory; larger ones (photos) spill to a temporary file.
SPOOL_BYTES = 1024 * 1024
WATCH_INTERVAL_SECONDS = 0.25


@dataclass
class _Reading:
    sock: socket.socket
    started: float
    received: int = 0
    cut: bool = False


@dataclass
class _Watchdog:
    grace_seconds: float
    min_bytes_per_second: float
    readings: dict[int, _Reading] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)
    thread: threading.Thread | None = None

    def watch(self, reading: _Reading) -> None:
        with self.lock:
            self.readings[id(reading)] = reading
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(
                    target=self._run, name="cityrelay-slow-bodies", daemon=True
                )
                self.thread.start()

    def forget(self, reading: _Reading) -> None:
        with self.lock:
            self.readings.pop(id(reading), None)

    def behind(self, reading: _Reading, now: float) -> bool:
        elapsed = now - reading.started
        return (
            elapsed > self.grace_seconds and reading.received < self.min_bytes_per_second * elapsed
        )

    def _run(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL_SECONDS)
            now = time.monotonic()
            with self.lock:
                late = [r for r in self.readings.values() if not r.cut and self.behind(r, now)]
                for reading in late:
                    reading.cut = True
            for reading in late:
                # OSError: the client closed it already.
                with contextlib.suppress(OSError):
                    reading.sock.shutdown(socket.SHUT_RD)


class SlowBodyGuard:
    """WSGI middleware: reads the body off gunicorn's socket at a watched pace, then runs the
    app on the buffered body. Without gunicorn (the test client, other servers) it does
    nothing. Bodies larger than ``max_bytes`` (``max_multipart_bytes`` for multipart) are left
    unread for the app to refuse (413)."""

    def __init__(
        self,
        app: WSGIApp,
        *,
        grace_seconds: float,
        min_bytes_per_second: float,
        max_bytes: int,
        max_multipart_bytes: int,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_multipart_bytes = max_multipart_bytes
        self.watchdog = _Watchdog(grace_seconds, min_bytes_per_second)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        sock = environ.get("gunicorn.socket")
        declared = environ.get("CONTENT_LENGTH") or ""
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if sock is None or not (chunked or (declared.isascii() and declared.isdigit())):
            return self.app(environ, start_response)
        length = int(declared) if not chunked else None
        multipart = environ.get("CONTENT_TYPE", "").lower().startswith("multipart/")
        limit = self.max_multipart_bytes if multipart else self.max_bytes
        if length == 0 or (length is not None and length > limit):
            return self.app(environ, start_response)
        body = self._read(environ, sock, length, limit)
        if body is None:
            return _too_slow(start_response)
        environ["wsgi.input"] = body
        environ["CONTENT_LENGTH"] = str(_size(body))
        environ.pop("HTTP_TRANSFER_ENCODING", None)
        return self.app(environ, start_response)

    def _read(
        self, environ: dict[str, Any], sock: socket.socket, length: int | None, limit: int
    ) -> Any | None:
        source = environ["wsgi.input"]
        buffer = tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # noqa: SIM115
        reading = _Reading(sock, time.monotonic())
        self.watchdog.watch(reading)
        try:
            # A chunked body is read up to one byte past the limit, so the app still sees it
            # is too large.
            wanted = length if length is not None else limit + 1
            while reading.received < wanted:
                chunk = source.read(min(READ_SIZE, wanted - reading.received))
                if not chunk:
                    break
                buffer.write(chunk)
                reading.received += len(chunk)
        except Exception:
            # The client went away, or the watchdog shut the socket mid-chunk.
            if not reading.cut:
                buffer.close()
                raise
        finally:
            self.watchdog.forget(reading)
        if reading.cut or (length is not None and reading.received < length):
            buffer.close()
            return None
        buffer.seek(0)
        return buffer


def _size(body: Any) -> int:
    position = body.tell()
    body.seek(0, 2)
    size: int = body.tell()
    body.seek(position)
    return size


def _too_slow(start_response: Callable[..., Any]) -> list[bytes]:
    payload = (
        b'{"error":{"code":"request_timeout","message":"The request body arrived too slowly '
        b'or not at all.","fields":{"_body":["Sent too slowly."]}}}\n'
    )
    start_response(
        "408 Request Timeout",
        [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Connection", "close"),
        ],
    )
    return [payload]
