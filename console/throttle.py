"""Failed logins counted per username in Redis, shared by every web process: after
MAX_FAILURES within the window, that username is refused (even with the right password) until
the window has passed. Without a Redis URL (a bare test app) nothing is counted."""

from __future__ import annotations

import redis
from flask import current_app

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60
_CLIENT = "cityrelay.console.redis"


def _client() -> redis.Redis | None:
    url = current_app.config.get("REDIS_URL")
    if not url:
        return None
    if _CLIENT not in current_app.extensions:
        current_app.extensions[_CLIENT] = redis.Redis.from_url(url, socket_timeout=2)
    client: redis.Redis = current_app.extensions[_CLIENT]
    return client


def _key(username: str) -> str:
    # Named after the app's queue, so two deployments (or test runs) on one Redis never share.
    return f"{current_app.config['CELERY_QUEUE']}:console:login-failures:{username}"


def locked_for(username: str) -> int:
    """Seconds until ``username`` may try again; 0 when it may now."""
    client = _client()
    if client is None:
        return 0
    key = _key(username)
    failures = int(client.get(key) or 0)  # type: ignore[arg-type]
    if failures < MAX_FAILURES:
        return 0
    return max(int(client.ttl(key)), 1)  # type: ignore[arg-type]


def record_failure(username: str) -> None:
    client = _client()
    if client is None:
        return
    key = _key(username)
    # The window starts at the first failure (EXPIRE … NX needs Redis 7; this works on 6); a
    # count left without one (a process stopped in between) gets one now.
    if int(client.incr(key)) == 1 or int(client.ttl(key)) < 0:  # type: ignore[arg-type]
        client.expire(key, WINDOW_SECONDS)


def forget_failures(username: str) -> None:
    client = _client()
    if client is not None:
        client.delete(_key(username))
