"""Failed console logins counted in Redis, shared by every web process.

Failures are counted per username *and* client address: after MAX_FAILURES from one address
within the window, that address may not log in as that username (even with the right password)
until the window has passed, while the user can still log in from anywhere else. A ceiling of
MAX_FAILURES_PER_USERNAME from all addresses together holds back a guessing spread over many
addresses. A successful login clears both counts. Without a Redis URL (a bare test app), or
while Redis cannot be reached, nothing is counted and logins go on: the password check still
guards every login, and a Redis outage must not lock the offices out of their console."""

from __future__ import annotations

import logging

import redis
from flask import current_app

MAX_FAILURES = 10
MAX_FAILURES_PER_USERNAME = 100
WINDOW_SECONDS = 15 * 60
_CLIENT = "cityrelay.console.redis"

log = logging.getLogger(__name__)


def _client() -> redis.Redis | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    if _CLIENT not in current_app.extensions:
        current_app.extensions[_CLIENT] = redis.Redis.from_url(
            url, socket_timeout=2, socket_connect_timeout=2
        )
    client: redis.Redis = current_app.extensions[_CLIENT]
    return client


def _keys(username: str, address: str) -> tuple[tuple[str, int], ...]:
    """Each count's key with the failures it allows."""
    # Named after the app's queue, so two deployments (or test runs) on one Redis never share.
    prefix = f"{current_app.config['CELERY_QUEUE']}:console:login-failures:{username}"
    return ((f"{prefix}:from:{address}", MAX_FAILURES), (prefix, MAX_FAILURES_PER_USERNAME))


def locked_for(username: str, address: str) -> int:
    """Seconds until ``username`` may try again from ``address``; 0 when it may now."""
    client = _client()
    if client is None:
        return 0
    try:
        wait = 0
        for key, allowed in _keys(username, address):
            if int(client.get(key) or 0) >= allowed:  # type: ignore[arg-type]
                wait = max(wait, int(client.ttl(key)), 1)  # type: ignore[arg-type]
        return wait
    except redis.RedisError as error:
        log.warning("console login throttle unavailable, not checked: %s", error)
        return 0


def record_failure(username: str, address: str) -> None:
    client = _client()
    if client is None:
        return
    try:
        for key, _allowed in _keys(username, address):
            # The window starts at the first failure (EXPIRE … NX needs Redis 7; this works on
            # 6); a count left without one (a process stopped in between) gets one now.
            if int(client.incr(key)) == 1 or int(client.ttl(key)) < 0:  # type: ignore[arg-type]
                client.expire(key, WINDOW_SECONDS)
    except redis.RedisError as error:
        log.warning("console login throttle unavailable, failure not counted: %s", error)


def forget_failures(username: str, address: str) -> None:
    client = _client()
    if client is None:
        return
    try:
        client.delete(*(key for key, _allowed in _keys(username, address)))
    except redis.RedisError as error:
        log.warning("console login throttle unavailable, failures not cleared: %s", error)
