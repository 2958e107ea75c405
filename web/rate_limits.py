"""Rate limits on the doors anyone can knock at, counted in Redis and shared by every web process.

A view marked ``@rate_limited(scope)`` is checked before it runs: first per client address
(``request.remote_addr``; behind a proxy see ``PROXY_FIX_HOPS``), then, for a scope with a key
limit, per API key (the bearer token, or Open311's ``api_key``, counted by a hash of the key,
so an unknown key never spends a real key's budget). Over a limit the answer is 429 in the one
error shape (code ``rate_limited``) with ``Retry-After`` in seconds; Open311 answers it in its
own shape. The limits are settings (``RATE_LIMIT_*``, read at each request), each a list such as
``30/minute;300/hour``; an empty one is no limit.

Each limit is a fixed window that starts at the first request counted: ``SET NX EX``, ``INCR``
and ``PTTL`` in one transaction per limit, all limits of a check in one round trip, so a window
never needs a second command to get its expiry (``EXPIRE … NX`` needs Redis 7). Requests over
the limit count too: hammering a closed door keeps it closed no longer than the window.

Redis unreachable or slow fails open: the check gives up after ``REDIS_TIMEOUT_SECONDS``
without retries, and for the next ``OPEN_CIRCUIT_SECONDS`` nothing is checked at all, so an
outage costs one short wait per web process now and then, never one per request, and intake
keeps working."""

from __future__ import annotations

import hashlib
import logging
import math
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeVar

import redis
from flask import Flask, current_app, request
from redis.backoff import NoBackoff
from redis.retry import Retry

from web.errors import ApiError, ErrorSchema
from web.openapi import Answer, Header

EXTENSION = "cityrelay.rate_limits"
ATTRIBUTE = "_cityrelay_rate_limit"
REDIS_TIMEOUT_SECONDS = 0.25
OPEN_CIRCUIT_SECONDS = 10.0
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
_RATE = re.compile(r"^(\d+)\s*(?:/|per)\s*(\d+)?\s*(second|minute|hour|day)s?$")

View = TypeVar("View", bound=Callable[..., Any])
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rate:
    count: int
    seconds: int

    def __str__(self) -> str:
        return f"{self.count} per {self.seconds} s"


@dataclass(frozen=True)
class Scope:
    """Which settings limit a kind of request: per client address and per API key (None: not
    counted that way). Scopes naming the same setting share its count."""

    per_ip: str
    per_key: str | None = None


SCOPES = {
    # Filing a report, through /api/v1 or Open311 (one budget per key for both).
    "reports": Scope("RATE_LIMIT_INTAKE_PER_IP", "RATE_LIMIT_REPORTS_PER_KEY"),
    # A reporter's answers, confirmations, reopenings and "still fixed?" answers.
    "reporter_actions": Scope("RATE_LIMIT_INTAKE_PER_IP", "RATE_LIMIT_ACTIONS_PER_KEY"),
    # Anonymous self-registration: the address is all there is to count by.
    "registrations": Scope("RATE_LIMIT_REGISTRATIONS_PER_IP"),
    # Console logins (console.views), besides the failures counted per username.
    "logins": Scope("RATE_LIMIT_LOGINS_PER_IP"),
}
SETTING_NAMES = tuple(
    sorted({name for scope in SCOPES.values() for name in (scope.per_ip, scope.per_key) if name})
)

# For the OpenAPI document of every limited operation.
RATE_LIMITED = Answer(
    ErrorSchema,
    "Too many requests from this key or address (code `rate_limited`); try again after "
    "`Retry-After` seconds.",
    headers={
        "Retry-After": Header(
            "Seconds until the limit lets a request through again.",
            {"type": "string", "pattern": "^[1-9][0-9]*$"},
            True,
        )
    },
)


class RateLimited(ApiError):
    def __init__(self, retry_after: int) -> None:
        super().__init__(
            429,
            "rate_limited",
            f"Too many requests; try again in {retry_after} seconds.",
            headers={"Retry-After": str(retry_after)},
        )
        self.retry_after = retry_after


@lru_cache(maxsize=64)
def parse_rates(text: str) -> tuple[Rate, ...]:
    """``"30/minute;300/hour"`` (also ``30 per minute``, ``10/5 minutes``, ``,`` between)."""
    rates = []
    for part in re.split(r"[;,]", text):
        item = part.strip().lower()
        if not item:
            continue
        match = _RATE.match(item)
        if match is None or int(match.group(1)) < 1 or match.group(2) == "0":
            raise ValueError(
                f"'{part.strip()}' is not a rate such as 30/minute (second, minute, hour, day)"
            )
        count, multiple, unit = int(match.group(1)), int(match.group(2) or 1), match.group(3)
        rates.append(Rate(count, multiple * UNIT_SECONDS[unit]))
    return tuple(rates)


class Limiter:
    """The counts of one app, in the Redis at ``url``."""

    def __init__(self, url: str, prefix: str) -> None:
        self.prefix = prefix
        self.client = redis.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 0),
        )
        self._closed_until = 0.0  # monotonic time until which Redis is not asked
        self._lock = threading.Lock()

    @property
    def checking(self) -> bool:
        """False while Redis failed lately and nothing is counted."""
        return time.monotonic() >= self._closed_until

    def hit(self, counts: list[tuple[str, str, Rate]]) -> int:
        """Counts one request under each ``(setting, identity, rate)``; the seconds to wait
        when one of them is over its limit, else 0."""
        if not counts or not self.checking:
            return 0
        pipe = self.client.pipeline(transaction=True)
        for setting, identity, rate in counts:
            key = f"{self.prefix}:rate:{setting}:{identity}:{rate.count}/{rate.seconds}"
            pipe.set(key, 0, ex=rate.seconds, nx=True)
            pipe.incr(key)
            pipe.pttl(key)
        try:
            replies = pipe.execute()
        except redis.RedisError as error:
            with self._lock:
                self._closed_until = time.monotonic() + OPEN_CIRCUIT_SECONDS
            log.warning(
                "rate limits unavailable, not checked for %.0f s: %s", OPEN_CIRCUIT_SECONDS, error
            )
            return 0
        wait = 0
        for index, (_setting, _identity, rate) in enumerate(counts):
            count, pttl = int(replies[3 * index + 1]), int(replies[3 * index + 2])
            if count > rate.count:
                seconds = math.ceil(pttl / 1000) if pttl > 0 else rate.seconds
                wait = max(wait, seconds, 1)
        return wait


def init_app(app: Flask) -> None:
    """Checks every limit setting now (a typo stops the start, not the first request) and
    checks the marked views before they run."""
    for name in SETTING_NAMES:
        try:
            parse_rates(str(app.config.get(name) or ""))
        except ValueError as error:
            raise RuntimeError(f"CITYRELAY_{name}: {error}") from None
    url = app.config.get("REDIS_URL")
    if app.config.get("RATE_LIMITS_ENABLED", True) and url:
        app.extensions[EXTENSION] = Limiter(url, app.config["CELERY_QUEUE"])
    app.before_request(_check_marked_view)


def rate_limited(scope: str, key: Callable[[], str | None] | None = None) -> Callable[[View], View]:
    """Marks a view as limited under ``scope`` (see SCOPES); ``key`` gives the request's API
    key for a scope counted per key."""
    if scope not in SCOPES:
        raise ValueError(f"unknown rate limit scope {scope!r}")
    if (key is None) != (SCOPES[scope].per_key is None):
        raise ValueError(f"scope {scope!r} needs a key function exactly when counted per key")

    def mark(view: View) -> View:
        setattr(view, ATTRIBUTE, (scope, key))
        return view

    return mark


def bearer_token() -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _check_marked_view() -> None:
    view = current_app.view_functions.get(request.endpoint or "")
    marked = getattr(view, ATTRIBUTE, None)
    if marked is not None:
        check(*marked)


def check(scope: str, key: Callable[[], str | None] | None = None) -> None:
    """Counts this request under ``scope``, per address and (for a scope counted per key) per
    key, in one round trip to Redis; raises RateLimited when it is over a limit."""
    limiter: Limiter | None = current_app.extensions.get(EXTENSION)
    if limiter is None:
        return
    limits = SCOPES[scope]
    counts = _counts(limits.per_ip, request.remote_addr or "unknown")
    if limits.per_key is not None and key is not None:
        token = key()
        if token:
            digest = hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:32]
            counts += _counts(limits.per_key, digest)
    if wait := limiter.hit(counts):
        raise RateLimited(wait)


def _counts(setting: str, identity: str) -> list[tuple[str, str, Rate]]:
    rates = parse_rates(str(current_app.config.get(setting) or ""))
    return [(setting, identity, rate) for rate in rates]
