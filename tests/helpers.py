"""Small things several test modules need: sample data, synthetic files, waits on real signals
(a row's state, a log line, the broker's queue) instead of sleeps, and a real webhook endpoint."""

from __future__ import annotations

import csv
import json
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import redis
from flask.testing import FlaskClient

from evaluation import datasets
from intake.open311 import XML_ITEM
from models.seed import demo_city
from routing import webhooks

# Long enough for a worker on a slow CI machine, short enough that a stuck test says so.
PROCESSING_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.05


def sample_point(office_code: str | None = None) -> dict[str, Any]:
    """A point well inside a demo community (the first one unless named)."""
    points = demo_city()["sample_points"]
    if office_code is None:
        return points[0]
    return next(p for p in points if p["office"] == office_code)


def tiny_png(seed: int = 0) -> bytes:
    """A valid 1x1 PNG; ``seed`` changes the pixel so photos can differ."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixel = zlib.compress(bytes([0, seed % 256, 0, 0]))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixel) + chunk(b"IEND", b"")
    )


# ---------- Open311 (GeoReport v2) requests and answers ----------

OPEN311 = "/open311/v2"


def from_xml(element: ET.Element) -> Any:
    """The JSON form of an Open311 XML element, by the spec's conversion rules."""
    children = list(element)
    if element.tag in XML_ITEM:
        return [from_xml(child) for child in children]
    if not children:
        return element.text or ""
    return {child.tag: from_xml(child) for child in children}


def loosely(value: Any) -> Any:
    """XML has only text: compare JSON to it with every scalar as text (None as empty)."""
    if isinstance(value, dict):
        return {k: loosely(v) for k, v in value.items()}
    if isinstance(value, list):
        return [loosely(v) for v in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def open311_get_both(client: FlaskClient, path: str, **kwargs: Any) -> tuple[Any, ET.Element]:
    """``GET {OPEN311}/{path}`` in JSON and in XML, both answered 200: the JSON and XML root."""
    as_json = client.get(f"{OPEN311}/{path}.json", **kwargs)
    as_xml = client.get(f"{OPEN311}/{path}.xml", **kwargs)
    assert as_json.status_code == 200 and as_xml.status_code == 200
    assert as_json.content_type == "application/json; charset=utf-8"
    assert as_xml.content_type == "text/xml; charset=utf-8"
    return as_json.get_json(), ET.fromstring(as_xml.data)


def open311_post(client: FlaskClient, key: str | None, fmt: str = "json", **form: Any) -> Any:
    """``POST requests.{fmt}``: a missing manhole cover at the first sample point, filed with
    ``key``; ``form`` overrides fields (None leaves one out)."""
    point = sample_point()
    data: dict[str, Any] = {
        "service_code": "manhole_cover",
        "lat": str(point["lat"]),
        "long": str(point["lon"]),
        "description": "井盖没了\r\n很危险",
        "attribute[cover_state]": "missing",
    }
    if key:
        data["api_key"] = key
    data.update(form)
    data = {k: v for k, v in data.items() if v is not None}
    return client.post(f"{OPEN311}/requests.{fmt}", data=data)


def open311_errors(response: Any, status: int) -> list[dict[str, Any]]:
    """The Open311 error list of an answer with ``status``, read from JSON or XML."""
    assert response.status_code == status, response.get_data(as_text=True)
    if response.mimetype == "text/xml":
        root = ET.fromstring(response.data)
        assert root.tag == "errors"
        errors: list[dict[str, Any]] = from_xml(root)
        return errors
    body = response.get_json()
    assert isinstance(body, list) and body
    assert all(set(e) == {"code", "description"} for e in body)
    return body


# ---------- synthetic evaluation files, with the real files' columns ----------

SCF_COLUMNS = [
    "id", "created_at", "status", "organization", "request_type", "summary", "description",
    "address", "lat", "lng", "reporter_role", "html_url",
]  # fmt: skip
TEDDY_COLUMNS = ["source", "msg_id", "title", "detail", "text", "label_l1"]


def write_csv(path: Path, columns: list[str], rows: list[dict[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        for row in rows:
            writer.writerow({column: row.get(column, "") for column in columns})


def write_shared(folder: Path) -> None:
    """Tiny Newport, multi-city and Teddy Cup files where ``../shared/data`` keeps the real ones."""
    write_csv(
        folder / datasets.NEWPORT_FILE,
        SCF_COLUMNS,
        [
            {
                "id": "10",
                "request_type": "Pothole Issue",
                "summary": "Pothole Issue",
                "description": "hole",
            },
            {"id": "11", "request_type": "Street Light Issue", "description": "lamp out"},
            {"id": "12", "request_type": "Storm Drain", "description": "drain clogged"},
            {"id": "13", "request_type": "Snow Issue", "description": "not plowed"},
            {"id": "14", "request_type": "Graffiti Issue", "description": "  "},
            {"id": "15", "request_type": "", "description": "something"},
        ],
    )
    write_csv(
        folder / datasets.MULTICITY_FILE,
        SCF_COLUMNS,
        [
            {"request_type": "Streetlight Maintenance: Lamp Out", "description": "dark"},
            {"request_type": "Illegal Dumping", "description": "couch dumped"},
            {"request_type": "Dead Animal", "description": "a raccoon"},
        ],
    )
    write_csv(
        folder / datasets.TEDDYCUP_FILE,
        TEDDY_COLUMNS,
        [
            {"title": "路灯不亮", "detail": "小区门口路灯坏了", "text": "路灯不亮 小区门口路灯坏了",
             "label_l1": "城乡建设"},
            {"title": "", "detail": "工地噪音", "text": "工地噪音", "label_l1": "环境保护"},
            {"title": "学校收费", "detail": "乱收费", "text": "学校收费 乱收费",
             "label_l1": "教育文体"},
        ],
    )  # fmt: skip


# ---------- waiting on real signals ----------


def wait_for(
    condition: Callable[[], Any], timeout: float, what: str, details: Callable[[], str] = str
) -> Any:
    """The first truthy value of ``condition()``, polled until ``timeout`` seconds have passed;
    then fails naming ``what`` (and ``details()``, e.g. a process's log)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"waited {timeout:.0f}s for {what}\n{details()}")
        time.sleep(POLL_SECONDS)


def wait_until_processed(
    client: FlaskClient, report_id: int, timeout: float = PROCESSING_TIMEOUT_SECONDS
) -> dict[str, Any]:
    """The report as the API shows it once it has left ``received`` (routed or in triage)."""

    def processed() -> dict[str, Any] | None:
        report: dict[str, Any] = client.get(f"/api/v1/reports/{report_id}").get_json()
        return report if report["status"] != "received" else None

    result: dict[str, Any] = wait_for(processed, timeout, f"report {report_id} to be processed")
    return result


def wait_for_log(
    path: Path, needle: str, timeout: float = PROCESSING_TIMEOUT_SECONDS, count: int = 1
) -> str:
    """A process's log once it holds ``needle`` (``count`` times); the log's text."""

    def logged() -> str | None:
        text = path.read_text(errors="replace") if path.exists() else ""
        return text if text.count(needle) >= count else None

    found: str = wait_for(
        logged, timeout, f"{needle!r} in {path.name}", lambda: path.read_text(errors="replace")
    )
    return found


def broker_messages(redis_client: redis.Redis, queue: str) -> int:
    """Messages the broker holds for ``queue``: waiting in it, or handed to a worker and not yet
    acknowledged (tasks ack late, so a message stays there until its task has finished)."""
    waiting = int(redis_client.llen(queue))
    # kombu keeps delivered, unacknowledged messages in the "unacked" hash as
    # [message, exchange, routing key]; the routing key is the queue's name.
    in_flight = sum(1 for raw in redis_client.hvals("unacked") if json.loads(raw)[2] == queue)
    return waiting + in_flight


def wait_until_broker_idle(
    redis_client: redis.Redis, queue: str, timeout: float = PROCESSING_TIMEOUT_SECONDS
) -> None:
    """Until every message ever sent to ``queue`` has been taken and its task has finished."""
    wait_for(
        lambda: broker_messages(redis_client, queue) == 0,
        timeout,
        f"the workers to finish every message of {queue}",
    )


# ---------- a real webhook endpoint ----------


@dataclass(frozen=True)
class ReceivedWebhook:
    """One POST a ``WebhookReceiver`` got, and the status it answered."""

    path: str
    # by lower-case name: header names are case-insensitive (urllib sends "X-cityrelay-…")
    headers: dict[str, str]
    body: bytes
    answered: int
    # when it arrived (time.monotonic())
    at: float = 0.0

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        return json.loads(self.body)

    def verifies(self, secret: str) -> bool:
        """Checked the way a receiver should: signature over timestamp and raw body, recent."""
        return webhooks.verify(
            secret,
            self.header(webhooks.TIMESTAMP_HEADER),
            self.body,
            self.header(webhooks.SIGNATURE_HEADER),
            now=time.time(),
        )


class WebhookReceiver:
    """An HTTP server on 127.0.0.1 (a free port) in a thread of the test process. It answers
    the first ``fail_first`` POSTs, and every POST while ``failing`` is set, with 500, the
    others with 204 (or a 307 to ``redirect_to``), and records each one."""

    def __init__(
        self, fail_first: int = 0, failing: bool = False, redirect_to: str | None = None
    ) -> None:
        self.fail_first = fail_first
        self.failing = failing
        # answer what would succeed with a redirect there instead
        self.redirect_to = redirect_to
        self._lock = threading.Lock()
        self._received: list[ReceivedWebhook] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    fail = receiver.failing or len(receiver._received) < receiver.fail_first
                    status = 500 if fail else 307 if receiver.redirect_to else 204
                    receiver._received.append(
                        ReceivedWebhook(
                            self.path,
                            {name.lower(): value for name, value in self.headers.items()},
                            body,
                            status,
                            time.monotonic(),
                        )
                    )
                self.send_response(status)
                if status == 307 and receiver.redirect_to:
                    self.send_header("Location", receiver.redirect_to)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the test reads what was received instead

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks/cityrelay"

    @property
    def received(self) -> list[ReceivedWebhook]:
        with self._lock:
            return list(self._received)

    def delivered(self) -> list[ReceivedWebhook]:
        """The POSTs it answered with 2xx."""
        return [r for r in self.received if 200 <= r.answered < 300]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)
