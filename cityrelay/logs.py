"""Log lines: one JSON object each (or a text line, ``CITYRELAY_LOG_FORMAT``) carrying the
request id, and the report and case ids and the task when known.

Apart from ``cityrelay.observability`` (which sets the ids for each request and task) because
gunicorn's master process builds its logging from these classes: importing them must not bring
in the app (Flask, Celery, the services), which that process never runs.
"""

from __future__ import annotations

import json
import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("json", "text")

# Set by cityrelay.observability for the request or task of the moment; read into each record.
request_id_var: ContextVar[str | None] = ContextVar("cityrelay_request_id", default=None)
report_id_var: ContextVar[int | None] = ContextVar("cityrelay_report_id", default=None)
case_id_var: ContextVar[int | None] = ContextVar("cityrelay_case_id", default=None)
task_var: ContextVar[str | None] = ContextVar("cityrelay_task", default=None)
task_id_var: ContextVar[str | None] = ContextVar("cityrelay_task_id", default=None)

CONTEXT_FIELDS = ("request_id", "report_id", "case_id", "task", "task_id")
ACCESS_FIELDS = ("method", "route", "status", "duration_ms")


class ContextFilter(logging.Filter):
    """Puts the request id, report and case ids and task of the moment on each record (a value
    given with ``extra=`` wins)."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in (
            ("request_id", request_id_var),
            ("report_id", report_id_var),
            ("case_id", case_id_var),
            ("task", task_var),
            ("task_id", task_id_var),
        ):
            if getattr(record, name, None) is None:
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp (UTC), level, logger, message, request_id, and the
    report id, case id, task and request measures when known; an exception's traceback too."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for name in (*CONTEXT_FIELDS[1:], *ACCESS_FIELDS):
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """``time level logger: message [request_id=… report_id=…]`` for people at a terminal."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        known = [
            f"{name}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        if not known:
            return line
        first, newline, rest = line.partition("\n")
        return f"{first} [{' '.join(known)}]{newline}{rest}"


def _formatter(log_format: str) -> logging.Formatter:
    if log_format not in LOG_FORMATS:
        raise ValueError(f"CITYRELAY_LOG_FORMAT must be json or text, not {log_format!r}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def configure_logging(log_format: str, level: int | str = logging.INFO) -> None:
    """Every record of this process to stderr, one line each in ``log_format``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_formatter(log_format))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    # Flask gives an app's logger a handler of its own when it is first used before logging is
    # set up (create_app hands it to the dispatcher): every app record would be written twice.
    from flask.logging import default_handler as flask_default_handler

    for name in list(logging.root.manager.loggerDict):
        logging.getLogger(name).removeHandler(flask_default_handler)


def gunicorn_logconfig(log_format: str) -> dict[str, Any]:
    """gunicorn's ``logconfig_dict``: its own messages and the app's in ``log_format``.
    Gunicorn's access log is left out: the app logs each request itself, with its id."""
    _formatter(log_format)  # refuses an unknown format before gunicorn starts
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"cityrelay": {"()": f"{__name__}.{_formatter_class(log_format)}"}},
        "filters": {"context": {"()": f"{__name__}.ContextFilter"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "cityrelay",
                "filters": ["context"],
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"level": "INFO", "handlers": ["stderr"]},
        "loggers": {
            "gunicorn.error": {"level": "INFO", "handlers": [], "propagate": True},
            "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        },
    }


def _formatter_class(log_format: str) -> str:
    return "JsonFormatter" if log_format == "json" else "TextFormatter"
