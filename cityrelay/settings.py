"""Every setting in one place: defaults, then the environment.

Settings are read from ``CITYRELAY_<NAME>``; ``DATABASE_URL`` and ``REDIS_URL`` are also read
unprefixed because that is how hosting platforms hand them out.
"""

from __future__ import annotations

import os
import secrets
import time
from pathlib import Path
from typing import Any

PREFIX = "CITYRELAY_"

# name -> (default, description); the README's configuration table is generated from the same text.
SETTINGS: dict[str, tuple[Any, str]] = {
    "INSTANCE_PATH": (
        None,
        "Folder for the SQLite database, beat state and the like (default ./instance).",
    ),
    "DATABASE_URL": (None, "SQLAlchemy URL; default SQLite at <instance>/cityrelay.db."),
    "REDIS_URL": (None, "Celery broker. Unset under `cityrelay up`: an embedded Redis is started."),
    "PHOTO_STORE": (
        "database",
        "Where photos are kept: database (the photo_blobs table, so web machines and workers "
        "share nothing but PostgreSQL and Redis) or directory (files in MEDIA_DIR, which every "
        "web machine must then share).",
    ),
    "MEDIA_DIR": (
        None,
        "The photos' folder under PHOTO_STORE=directory, and the folder `cityrelay import-media` "
        "reads by default (default <instance>/media).",
    ),
    "EXPORT_SYNC_MAX_ROWS": (
        50000,
        "A case-list CSV with more rows than this is written by a task (202, then poll).",
    ),
    "CLASSIFIER_PATH": (
        None,
        "The trained classifier model file (default <instance>/classifier.joblib).",
    ),
    "SECRET_KEY": (
        None,
        "Signs the office console's session cookies; production sets it (the same on every "
        "web machine). Unset: one is made once and kept in <instance>/secret_key.",
    ),
    "CELERY_QUEUE": ("cityrelay", "Name of the Celery queue the tasks go to."),
    "CLASSIFY_THRESHOLD": (0.45, "Below this classifier confidence a case goes to triage."),
    "TIMEZONE": (
        "Asia/Shanghai",
        "Time zone dates are shown in (Open311, the reporter pages); due times count on each "
        "office's calendar, in the calendar's own zone.",
    ),
    "SWEEP_INTERVAL_SECONDS": (30.0, "How often beat looks for reports stuck before routing."),
    "SWEEP_STALE_SECONDS": (60.0, "Age after which an unrouted report is enqueued again."),
    "DB_LOCK_TIMEOUT_SECONDS": (
        5.0,
        "PostgreSQL: longest wait for a lock (a row, a category's case-opening lock); a task "
        "that waits longer fails and is retried later; a request answers 503. 0: no limit.",
    ),
    "DB_STATEMENT_TIMEOUT_SECONDS": (
        30.0,
        "PostgreSQL: longest statement of a web request (503 past it). 0: no limit.",
    ),
    "WORKER_DB_STATEMENT_TIMEOUT_SECONDS": (
        300.0,
        "PostgreSQL: longest statement of a worker or beat process (large exports). 0: no limit.",
    ),
    "OPEN311_JURISDICTION": ("cityrelay", "Open311 jurisdiction_id this server answers to."),
    "OPEN311_CONTACT": ("CityRelay operators", "Open311 discovery `contact`: who runs it."),
    "MAX_PHOTOS": (5, "Photos allowed per report."),
    "MAX_PHOTO_BYTES": (10 * 1024 * 1024, "Largest photo accepted, in bytes."),
    "MAX_BODY_BYTES": (
        1024 * 1024,
        "Largest request body without photos (JSON or a plain form), in bytes; a larger one is "
        "refused with 413 before it is read. A multipart body may carry MAX_PHOTOS photos of "
        "MAX_PHOTO_BYTES each on top of this.",
    ),
    "SLOW_BODY_GRACE_SECONDS": (
        10.0,
        "Under `cityrelay web`, a request body may take this long before its pace is judged...",
    ),
    "SLOW_BODY_MIN_BYTES_PER_SECOND": (
        1024.0,
        "...and after that it must have arrived at this average rate at least, or the request "
        "is answered 408 and its connection closed, so slow clients cannot hold the web threads.",
    ),
    "MAX_FORM_FIELDS": (
        60,
        "Fields a form may carry besides its photos; a multipart body with more parts than this "
        "and MAX_PHOTOS together is refused with 413 as soon as the part after them arrives.",
    ),
    "MAX_PHOTO_PIXELS": (
        40_000_000,
        "Largest photo accepted, in pixels (width × height), checked before it is decoded.",
    ),
    "WEBHOOK_HOSTS": (
        "",
        "Comma-separated host names webhook URLs may name; empty allows any host.",
    ),
    "WEBHOOK_TIMEOUT_SECONDS": (5.0, "How long one webhook POST may take before it failed."),
    "OUTBOX_RELAY_INTERVAL_SECONDS": (5.0, "How often beat runs the notification relay."),
    "OUTBOX_MAX_ATTEMPTS": (8, "Failed delivery rounds after which a notification is dead."),
    "OUTBOX_BACKOFF_BASE_SECONDS": (30.0, "Wait after the first failure; doubles with each."),
    "OUTBOX_BACKOFF_CAP_SECONDS": (3600.0, "Longest wait between two delivery attempts."),
    "OUTBOX_LEASE_SECONDS": (
        120.0,
        "How long a relay run owns the notifications it claimed; after that they are due again.",
    ),
    "OUTBOX_BATCH_SIZE": (20, "Notifications one relay run claims at most."),
    "RECHECK_RADIUS_M": (
        100.0,
        'A report within this many metres of a case closed as fixed is offered a "still '
        'fixed?" check of it.',
    ),
    "RECHECK_WINDOW_DAYS": (14, 'Days after closing as fixed during which "still fixed?" asks.'),
    "OVERDUE_INTERVAL_SECONDS": (
        60.0,
        "How often beat flags the cases past their due time and escalates them to the office "
        "above.",
    ),
    "SPIKE_INTERVAL_SECONDS": (
        900.0,
        "How often beat looks for spikes (a category out of line in a community over the last "
        "24 hours) and announces each new one on the stats.spike topic.",
    ),
    "RATE_LIMITS_ENABLED": (
        True,
        "Count requests in Redis and answer 429 over the RATE_LIMIT_* limits; false: no limits.",
    ),
    "RATE_LIMIT_REPORTS_PER_KEY": (
        "30/minute;300/hour",
        "Reports one API key may file, through /api/v1 and Open311 together (retries count).",
    ),
    "RATE_LIMIT_ACTIONS_PER_KEY": (
        "30/minute;300/hour",
        'Answers, confirmations, reopenings and "still fixed?" answers of one reporter key.',
    ),
    "RATE_LIMIT_INTAKE_PER_IP": (
        "600/minute",
        "Every intake POST (reports, Open311 requests, a reporter's actions) from one client "
        "address: generous, because thousands of riders can share one carrier NAT address.",
    ),
    "RATE_LIMIT_REGISTRATIONS_PER_IP": (
        "10/minute;60/hour;300/day",
        "Anonymous self-registrations (POST /api/v1/reporters) from one client address.",
    ),
    "RATE_LIMIT_LOGINS_PER_IP": (
        "60/minute;600/hour",
        "Console login attempts from one client address, besides the failures counted per "
        "username.",
    ),
    "PROXY_FIX_HOPS": (
        0,
        "Proxies in front of the web server that set X-Forwarded-For and -Proto; the client "
        "address the rate limits count by is taken from them. 0: none, the peer's address.",
    ),
    "CONSOLE_SESSION_HOURS": (
        12,
        "A console login lasts this long; then the user logs in again.",
    ),
    "SESSION_COOKIE_SECURE": (
        False,
        "Mark the console's session cookie Secure on every answer (set it when the site is "
        "served over https only); without it, only answers to https requests carry it.",
    ),
    "READY_HEARTBEAT_SECONDS": (
        60.0,
        "/readyz answers 200 only if a worker sent a heartbeat (to Redis) this recently.",
    ),
    "LOG_FORMAT": (
        "json",
        "Log lines of the web server, workers and beat: json (one object per line, with the "
        "request id) or text.",
    ),
    "POINTS_FIRST_REPORT": (10, "Points for the first report of a problem fixed."),
    "POINTS_ME_TOO": (3, "Points for a later report merged into a case fixed (me too)."),
    "POINTS_DAILY_CAP": (30, "Most points a reporter is awarded on one local day."),
    "POINTS_SPLIT_RADIUS_M": (
        100.0,
        "A reporter rewarded for a case gets nothing for another case of its category whose "
        "first report lies this close (metres)...",
    ),
    "POINTS_SPLIT_WINDOW_DAYS": (
        1,
        "...and fewer than this many local days apart (1: the same day; 0: no such rule).",
    ),
}


def _coerce(value: str, default: Any) -> Any:
    if isinstance(default, bool):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def load_settings(environ: os._Environ[str] | dict[str, str] | None = None) -> dict[str, Any]:
    env = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for name, (default, _doc) in SETTINGS.items():
        raw = env.get(PREFIX + name)
        if raw is None and name in {"DATABASE_URL", "REDIS_URL"}:
            raw = env.get(name)
        settings[name] = default if raw in (None, "") else _coerce(raw, default)

    instance = Path(settings["INSTANCE_PATH"] or Path.cwd() / "instance").resolve()
    settings["INSTANCE_PATH"] = str(instance)
    if not settings["DATABASE_URL"]:
        settings["DATABASE_URL"] = f"sqlite:///{instance / 'cityrelay.db'}"
    settings["DATABASE_URL"] = normalize_database_url(settings["DATABASE_URL"])
    if not settings["MEDIA_DIR"]:
        settings["MEDIA_DIR"] = str(instance / "media")
    if not settings["CLASSIFIER_PATH"]:
        settings["CLASSIFIER_PATH"] = str(instance / "classifier.joblib")
    return settings


def instance_secret_key(instance_path: str | Path) -> str:
    """The secret key kept in ``<instance>/secret_key`` (mode 0600), made on first use, so that
    restarts and every process on one machine sign sessions alike."""
    path = Path(instance_path) / "secret_key"
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate = secrets.token_urlsafe(48)
    try:
        # O_EXCL: when two processes start at once, one writes and both read what it wrote.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _attempt in range(50):
            key = path.read_text(encoding="ascii").strip()
            if key:
                return key
            time.sleep(0.05)
        raise RuntimeError(f"{path} stays empty; remove it or set CITYRELAY_SECRET_KEY") from None
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(candidate + "\n")
    return candidate


def normalize_database_url(url: str) -> str:
    """Accept the plain ``postgresql://`` URLs servers hand out and use psycopg 3 for them."""
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url
