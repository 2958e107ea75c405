"""Webhook decisions, from values alone: which subscriptions want a notification, how a body is
signed and checked, how long to wait after a failure, and what a subscription may say.

The signature is HMAC-SHA256, keyed with the subscription's secret, over
``<timestamp>.<raw body>``; the timestamp (Unix seconds) travels in its own header and is part
of what is signed, so a captured request cannot be replayed later with a fresh timestamp.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from urllib.parse import urlsplit

SIGNATURE_HEADER = "X-CityRelay-Signature"
TIMESTAMP_HEADER = "X-CityRelay-Timestamp"
DELIVERY_HEADER = "X-CityRelay-Delivery"
TOPIC_HEADER = "X-CityRelay-Topic"
SIGNATURE_SCHEME = "sha256"
# How far a receiver should let a request's timestamp be from its own clock.
DEFAULT_TOLERANCE_SECONDS = 300

# The waits after failures are this much shorter at most, at random, so endpoints that came
# back are not hit by every waiting notification at the same instant.
JITTER = 0.25

MIN_SECRET_CHARS = 16
MAX_SECRET_CHARS = 256
MAX_URL_CHARS = 2000
MAX_PATTERN_CHARS = 100

# topic: dotted lowercase words ("case.routed"); a pattern may end in ".*" or be "*"
_TOPIC = re.compile(r"[a-z][a-z0-9_]*(?:\.[a-z][a-z0-9_]*)*")
_TOPIC_PATTERN = re.compile(rf"\*|{_TOPIC.pattern}(?:\.\*)?")
# recipient: "triage", "office:PD-HG-02", "reporter:17"; a pattern may be "kind:*" or "*"
_RECIPIENT_PATTERN = re.compile(r"\*|[a-z][a-z_]*(?::(?:\*|[A-Za-z0-9][A-Za-z0-9_.-]*))?")


# ---------- signing ----------


def signed_content(timestamp: int, body: bytes) -> bytes:
    return str(timestamp).encode("ascii") + b"." + body


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``: ``sha256=<hex>``."""
    digest = hmac.new(secret.encode("utf-8"), signed_content(timestamp, body), hashlib.sha256)
    return f"{SIGNATURE_SCHEME}={digest.hexdigest()}"


def verify(
    secret: str,
    timestamp_header: str | None,
    body: bytes,
    signature_header: str | None,
    now: float,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver checks: the signature matches the raw body and timestamp under the
    secret (compared in constant time), and the timestamp is within ``tolerance_seconds`` of
    ``now`` (Unix seconds)."""
    if not timestamp_header or not signature_header or not timestamp_header.isdigit():
        return False
    timestamp = int(timestamp_header)
    if abs(now - timestamp) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature_header.strip())


# ---------- retries ----------


def backoff_seconds(failures: int, base: float, cap: float, unit: float) -> float:
    """How long to wait after the ``failures``-th failed attempt: ``base × 2^(failures − 1)``,
    at most ``cap``, made up to ``JITTER`` shorter by ``unit`` (a random number in [0, 1))."""
    if failures < 1:
        return 0.0
    exponential = base * 2.0 ** min(failures - 1, 62)
    return min(cap, exponential) * (1.0 - JITTER * min(max(unit, 0.0), 1.0))


# ---------- who wants what ----------


def topic_matches(pattern: str, topic: str) -> bool:
    """``*`` matches every topic, ``case.*`` every topic under ``case.``; else equality."""
    if pattern == "*":
        return True
    if pattern.endswith(".*"):
        return topic.startswith(pattern[:-1])
    return pattern == topic


def recipient_matches(pattern: str, recipient: str) -> bool:
    """``*`` matches every recipient, ``reporter:*`` every reporter; else equality."""
    if pattern == "*":
        return True
    if pattern.endswith(":*"):
        return recipient.startswith(pattern[:-1])
    return pattern == recipient


def wants(
    topics: Iterable[str], recipients: Iterable[str] | None, topic: str, recipient: str
) -> bool:
    """Whether a subscription to ``topics`` (and ``recipients``; None: every recipient) wants
    a notification of ``topic`` for ``recipient``."""
    if not any(topic_matches(pattern, topic) for pattern in topics):
        return False
    return recipients is None or any(recipient_matches(p, recipient) for p in recipients)


# ---------- what a subscription may say ----------


def topic_pattern_problem(pattern: str) -> str | None:
    if len(pattern) > MAX_PATTERN_CHARS or not _TOPIC_PATTERN.fullmatch(pattern):
        return (
            f"'{pattern[:MAX_PATTERN_CHARS]}' is not a topic: dotted lowercase words such as "
            "'case.routed', optionally ending in '.*', or '*'."
        )
    return None


def recipient_pattern_problem(pattern: str) -> str | None:
    if len(pattern) > MAX_PATTERN_CHARS or not _RECIPIENT_PATTERN.fullmatch(pattern):
        return (
            f"'{pattern[:MAX_PATTERN_CHARS]}' is not a recipient: such as 'office:PD-HG-02', "
            "'reporter:*', 'triage' or '*'."
        )
    return None


def secret_problem(secret: str) -> str | None:
    if not MIN_SECRET_CHARS <= len(secret) <= MAX_SECRET_CHARS:
        return f"A secret has {MIN_SECRET_CHARS} to {MAX_SECRET_CHARS} characters."
    if not secret.isascii() or not secret.isprintable() or secret != secret.strip():
        return "A secret is printable ASCII without leading or trailing spaces."
    return None


def url_problem(url: str, allowed_hosts: frozenset[str]) -> str | None:
    """Why ``url`` cannot be a webhook endpoint, or None. ``allowed_hosts`` empty: any host."""
    if len(url) > MAX_URL_CHARS:
        return f"At most {MAX_URL_CHARS} characters."
    if not url.isascii() or not url.isprintable() or " " in url:
        return "A URL is printable ASCII without spaces (percent-encode the rest)."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "Not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "Only http and https URLs."
    if not parts.hostname:
        return "The URL names no host."
    if parts.username is not None or parts.password is not None:
        return "No user name or password in the URL; the signature authenticates."
    if parts.fragment:
        return "No #fragment: it is never sent."
    if port == 0:
        return "Port 0 is not a port."
    if allowed_hosts and parts.hostname.lower() not in allowed_hosts:
        return (
            f"Host '{parts.hostname}' is not one webhooks may reach "
            f"(CITYRELAY_WEBHOOK_HOSTS: {', '.join(sorted(allowed_hosts))})."
        )
    return None


def allowed_hosts(setting: str) -> frozenset[str]:
    """The CITYRELAY_WEBHOOK_HOSTS setting as a set of lowercase host names (empty: any)."""
    return frozenset(host.strip().lower() for host in setting.split(",") if host.strip())
