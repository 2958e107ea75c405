"""Rate limits on intake, registration and console login, counted in the run's Redis: 429 with
``Retry-After`` in the one error shape (Open311's own shape under /open311/), per key and per
client address, and open (no limit, no wait) while Redis cannot be reached."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.embedded import free_port
from tests.factories import make_key
from tests.helpers import open311_errors, open311_post, sample_point
from tests.integration.test_console import OFFICE, log_in, make_user
from tests.integration.test_delivery_faults import silent_broker
from web.rate_limits import EXTENSION, Limiter, Rate, parse_rates

POINT = sample_point()
REPORT = {"text": "小区门口垃圾桶满了", "lat": POINT["lat"], "lon": POINT["lon"]}
# A correctness bound, not a benchmark: without failing open a request waits out retries.
FAIL_OPEN_BOUND_SECONDS = 2.0


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def client_from(app: Flask, address: str | None = None) -> FlaskClient:
    """A client at an address of its own: the run's counts per address start at 0 for it."""
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address or new_address()
    return client


def new_address() -> str:
    digits = uuid.uuid4().int
    return f"10.{digits % 250 + 1}.{digits // 250 % 250 + 1}.{digits // 62500 % 250 + 1}"


def assert_rate_limited(response: Any, window_seconds: int) -> None:
    assert response.status_code == 429, response.get_data(as_text=True)
    assert response.get_json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= window_seconds


def test_a_key_over_its_report_limit_gets_429_and_another_key_does_not(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session]
) -> None:
    app = make_app(RATE_LIMIT_REPORTS_PER_KEY="3/hour;100/day")
    client = client_from(app)
    busy, other = bearer(make_key(sessions)), bearer(make_key(sessions))
    for _attempt in range(3):
        assert client.post("/api/v1/reports", json=REPORT, headers=busy).status_code == 202
    assert_rate_limited(client.post("/api/v1/reports", json=REPORT, headers=busy), 3600)
    # Another key from the same address files on.
    assert client.post("/api/v1/reports", json=REPORT, headers=other).status_code == 202
    # A made-up key is not counted against the real one (it is 401, not 429).
    forged = bearer("cr_" + "x" * 40)
    assert client.post("/api/v1/reports", json=REPORT, headers=forged).status_code == 401


def test_every_intake_post_from_one_address_shares_a_limit(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session]
) -> None:
    app = make_app(RATE_LIMIT_INTAKE_PER_IP="2/minute")
    crowded = client_from(app)
    one, two = bearer(make_key(sessions)), bearer(make_key(sessions))
    assert crowded.post("/api/v1/reports", json=REPORT, headers=one).status_code == 202
    # A reporter's action counts with the reports (404: no such report).
    assert crowded.post("/api/v1/reports/999999/confirm", headers=two).status_code == 404
    assert_rate_limited(crowded.post("/api/v1/reports", json=REPORT, headers=two), 60)
    assert client_from(app).post("/api/v1/reports", json=REPORT, headers=two).status_code == 202


def test_a_reporters_actions_have_a_limit_per_key(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session]
) -> None:
    app = make_app(RATE_LIMIT_ACTIONS_PER_KEY="2/hour")
    client = client_from(app)
    key = bearer(make_key(sessions))
    assert (
        client.post(
            "/api/v1/reports/999999/reopen", json={"reason": "又坏了"}, headers=key
        ).status_code
        == 404
    )
    assert client.post("/api/v1/cases/999999/recheck", json={}, headers=key).status_code == 400
    assert_rate_limited(client.post("/api/v1/reports/999999/answer", headers=key), 3600)
    # Filing is counted apart.
    assert client.post("/api/v1/reports", json=REPORT, headers=key).status_code == 202


def test_self_registrations_are_limited_per_address(make_app: Callable[..., Flask]) -> None:
    app = make_app(RATE_LIMIT_REGISTRATIONS_PER_IP="2/hour")
    farm = client_from(app)
    for _attempt in range(2):
        assert farm.post("/api/v1/reporters", json={}).status_code == 201
    assert_rate_limited(farm.post("/api/v1/reporters", json={}), 3600)
    assert client_from(app).post("/api/v1/reporters", json={}).status_code == 201


def test_open311_answers_429_in_its_own_shape_and_shares_the_keys_budget(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session]
) -> None:
    app = make_app(RATE_LIMIT_REPORTS_PER_KEY="2/hour")
    client = client_from(app)
    key = make_key(sessions)
    assert open311_post(client, key).status_code == 201
    assert client.post("/api/v1/reports", json=REPORT, headers=bearer(key)).status_code == 202
    for fmt in ("json", "xml"):
        refused = open311_post(client, key, fmt)
        (error,) = open311_errors(refused, 429)
        assert int(error["code"]) == 429 and "try again" in error["description"]
        assert 1 <= int(refused.headers["Retry-After"]) <= 3600
    assert_rate_limited(client.post("/api/v1/reports", json=REPORT, headers=bearer(key)), 3600)
    assert open311_post(client, make_key(sessions)).status_code == 201


def test_console_logins_are_limited_per_address(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session]
) -> None:
    app = make_app(RATE_LIMIT_LOGINS_PER_IP="3/hour")
    username, password = make_user(sessions, "staff", OFFICE)
    sprayer = client_from(app)
    for guess in ("a-wrong-password", "another-wrong-one", "a-third-one"):
        other_user = f"{username}-{guess}"
        assert log_in(sprayer, other_user, guess).status_code == 401
    held = log_in(sprayer, username, password)
    assert held.status_code == 429
    assert 1 <= int(held.headers["Retry-After"]) <= 3600
    assert "分钟后再试" in held.get_data(as_text=True)
    assert log_in(client_from(app), username, password).status_code == 303


def test_behind_a_proxy_the_forwarded_address_is_counted(make_app: Callable[..., Flask]) -> None:
    direct = make_app(RATE_LIMIT_REGISTRATIONS_PER_IP="1/hour")
    proxied = make_app(RATE_LIMIT_REGISTRATIONS_PER_IP="1/hour", PROXY_FIX_HOPS=1)
    proxy = new_address()

    def register(app: Flask, rider: str) -> int:
        headers = {"X-Forwarded-For": rider}
        return (
            client_from(app, proxy).post("/api/v1/reporters", json={}, headers=headers).status_code
        )

    first, second = new_address(), new_address()
    assert register(proxied, first) == 201
    assert register(proxied, second) == 201  # another rider behind the same proxy
    assert register(proxied, first) == 429
    # Without PROXY_FIX_HOPS the header is not believed: the proxy's own address is counted.
    assert register(direct, new_address()) == 201
    assert register(direct, new_address()) == 429


def test_limits_can_be_turned_off(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session]
) -> None:
    app = make_app(RATE_LIMITS_ENABLED=False, RATE_LIMIT_REPORTS_PER_KEY="1/hour")
    client = client_from(app)
    key = bearer(make_key(sessions))
    for _attempt in range(3):
        assert client.post("/api/v1/reports", json=REPORT, headers=key).status_code == 202


def test_limits_are_read_as_rates_and_a_bad_one_stops_the_start(
    make_app: Callable[..., Flask],
) -> None:
    assert parse_rates("30/minute;300/hour") == (Rate(30, 60), Rate(300, 3600))
    assert parse_rates("10 per 5 minutes, 1/day") == (Rate(10, 300), Rate(1, 86400))
    assert parse_rates("") == ()
    for bad in ("lots", "0/minute", "5/fortnight", "5/0 seconds", "-1/hour"):
        with pytest.raises(ValueError):
            parse_rates(bad)
    with pytest.raises(RuntimeError, match="CITYRELAY_RATE_LIMIT_REPORTS_PER_KEY"):
        make_app(RATE_LIMIT_REPORTS_PER_KEY="lots")


def test_with_redis_refusing_connections_intake_goes_on_at_once(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session]
) -> None:
    # Nothing listens on this port: the limits' Redis (and the broker) refuse every connection.
    app = make_app(
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", RATE_LIMIT_INTAKE_PER_IP="1/hour"
    )
    client = client_from(app)
    key = bearer(make_key(sessions))
    for _attempt in range(2):  # over the limit, were it counted
        started = time.monotonic()
        response = client.post("/api/v1/reports", json=REPORT, headers=key)
        elapsed = time.monotonic() - started
        assert response.status_code == 202, response.get_json()
        assert elapsed < FAIL_OPEN_BOUND_SECONDS, f"answered after {elapsed:.1f}s"
    assert not app.extensions[EXTENSION].checking


def test_a_redis_that_never_answers_is_given_up_on_and_not_asked_again(
    make_app: Callable[..., Flask], sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    key = bearer(make_key(sessions))
    client = client_from(app)
    with silent_broker() as port:
        hung = Limiter(f"redis://127.0.0.1:{port}/0", app.config["CELERY_QUEUE"])
        monkeypatch.setitem(app.extensions, EXTENSION, hung)
        asked: list[int] = []
        original = Limiter.hit

        def counting_hit(self: Limiter, counts: list[tuple[str, str, Rate]]) -> int:
            if self.checking:
                asked.append(len(counts))
            return original(self, counts)

        monkeypatch.setattr(Limiter, "hit", counting_hit)
        started = time.monotonic()
        first = client.post("/api/v1/reports", json=REPORT, headers=key)
        elapsed = time.monotonic() - started
        assert first.status_code == 202 and elapsed < FAIL_OPEN_BOUND_SECONDS, elapsed
        for _attempt in range(5):
            assert client.post("/api/v1/reports", json=REPORT, headers=key).status_code == 202
        # One attempt timed out; the rest went through without asking Redis.
        assert len(asked) == 1 and not hung.checking
    # Once the pause is over, Redis is asked again.
    monkeypatch.setattr(hung, "_closed_until", time.monotonic() - 1)
    assert hung.checking
