"""The pure parts of webhook delivery: signing and checking, the backoff, who wants what, and
what a subscription may say."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from models import limits
from routing import webhooks
from routing.webhooks import (
    allowed_hosts,
    backoff_seconds,
    recipient_pattern_problem,
    secret_problem,
    sign,
    topic_pattern_problem,
    url_problem,
    verify,
    wants,
)

SECRET = "s3cret-of-sixteen+"
BODY = '{"topic":"case.routed","payload":{"text":"垃圾桶满了"}}'.encode()
NOW = 1_790_000_000


# ---------- signing ----------


def test_the_signature_is_hmac_sha256_over_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, NOW, BODY) == f"sha256={expected}"


def test_a_signed_body_verifies_within_the_tolerance() -> None:
    signature = sign(SECRET, NOW, BODY)
    assert verify(SECRET, str(NOW), BODY, signature, now=NOW)
    assert verify(SECRET, str(NOW), BODY, signature, now=NOW + 299)
    assert verify(SECRET, str(NOW), BODY, signature, now=NOW - 299)


@pytest.mark.parametrize(
    ("secret", "timestamp", "body", "now"),
    [
        ("another-secret-of-16", str(NOW), BODY, NOW),  # wrong secret
        (SECRET, str(NOW), BODY + b" ", NOW),  # body changed by one byte
        (SECRET, str(NOW + 1), BODY, NOW),  # timestamp changed: it is signed
        (SECRET, str(NOW), BODY, NOW + 301),  # replayed too late
        (SECRET, str(NOW), BODY, NOW - 301),  # from too far in the future
        (SECRET, "", BODY, NOW),
        (SECRET, None, BODY, NOW),
        (SECRET, "-5", BODY, NOW),
        (SECRET, "12.5", BODY, NOW),
    ],
)
def test_anything_else_does_not_verify(
    secret: str, timestamp: str | None, body: bytes, now: int
) -> None:
    assert not verify(secret, timestamp, body, sign(SECRET, NOW, BODY), now=now)


def test_a_missing_or_foreign_signature_does_not_verify() -> None:
    assert not verify(SECRET, str(NOW), BODY, None, now=NOW)
    assert not verify(SECRET, str(NOW), BODY, "", now=NOW)
    hex_only = sign(SECRET, NOW, BODY).removeprefix("sha256=")
    assert not verify(SECRET, str(NOW), BODY, hex_only, now=NOW)
    assert not verify(SECRET, str(NOW), BODY, "sha1=" + hex_only, now=NOW)


# ---------- backoff ----------


def test_the_wait_doubles_with_each_failure_up_to_the_cap() -> None:
    waits = [backoff_seconds(n, base=30, cap=3600, unit=0.0) for n in range(1, 10)]
    assert waits == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600]
    assert backoff_seconds(0, base=30, cap=3600, unit=0.0) == 0.0


def test_jitter_makes_a_wait_at_most_a_quarter_shorter() -> None:
    assert backoff_seconds(3, base=10, cap=1000, unit=0.0) == 40.0
    assert backoff_seconds(3, base=10, cap=1000, unit=0.5) == pytest.approx(35.0)
    assert backoff_seconds(3, base=10, cap=1000, unit=0.999999) == pytest.approx(30.0, abs=1e-3)
    # the cap is jittered too, so endpoints that come back are not hit all at once
    assert backoff_seconds(50, base=10, cap=1000, unit=1.0) == 750.0


def test_a_huge_failure_count_stays_at_the_cap() -> None:
    assert backoff_seconds(10_000, base=30, cap=3600, unit=0.0) == 3600


# ---------- who wants what ----------


@pytest.mark.parametrize(
    ("topics", "recipients", "topic", "recipient", "wanted"),
    [
        (["case.*"], None, "case.routed", "office:PD-HG-02", True),
        (["case.*"], None, "cases.routed", "office:PD-HG-02", False),
        (["case.*"], None, "case", "office:PD-HG-02", False),
        (["*"], None, "anything.at.all", "triage", True),
        (["case.routed"], None, "case.routed", "triage", True),
        (["case.routed"], None, "case.closed", "triage", False),
        (["case.closed", "case.routed"], None, "case.routed", "triage", True),
        (["case.*"], ["office:PD-HG-02"], "case.routed", "office:PD-HG-02", True),
        (["case.*"], ["office:PD-HG-02"], "case.routed", "office:PD-HG-03", False),
        (["case.*"], ["office:PD-HG-02"], "case.routed", "office:PD-HG-020", False),
        (["case.*"], ["reporter:*"], "case.routed", "reporter:17", True),
        (["case.*"], ["reporter:*"], "case.routed", "office:PD-HG-02", False),
        (["case.*"], ["reporter:*", "triage"], "case.triage", "triage", True),
        (["case.*"], ["*"], "case.triage", "triage", True),
    ],
)
def test_a_subscription_wants_its_topics_and_recipients(
    topics: list[str], recipients: list[str] | None, topic: str, recipient: str, wanted: bool
) -> None:
    assert wants(topics, recipients, topic, recipient) is wanted


# ---------- what a subscription may say ----------


@pytest.mark.parametrize("pattern", ["*", "case.*", "case.routed", "case.in_progress", "a.b.c"])
def test_good_topic_patterns(pattern: str) -> None:
    assert topic_pattern_problem(pattern) is None


@pytest.mark.parametrize(
    "pattern", ["", "case.", ".case", "Case.routed", "case.*.routed", "case*", "**", "x" * 101]
)
def test_bad_topic_patterns(pattern: str) -> None:
    assert topic_pattern_problem(pattern)


@pytest.mark.parametrize(
    "pattern", ["*", "triage", "office:PD-HG-02", "office:*", "reporter:*", "reporter:17"]
)
def test_good_recipient_patterns(pattern: str) -> None:
    assert recipient_pattern_problem(pattern) is None


@pytest.mark.parametrize(
    "pattern", ["", "office:", ":PD", "office:PD HG", "office:**", "Office:PD", "reporter:1*"]
)
def test_bad_recipient_patterns(pattern: str) -> None:
    assert recipient_pattern_problem(pattern)


def test_secrets_are_long_printable_ascii() -> None:
    assert secret_problem("x" * 16) is None
    assert secret_problem("x" * 256) is None
    for bad in ["x" * 15, "x" * 257, "秘密" * 10, "tab\there-is-long", " leading-space-secret"]:
        assert secret_problem(bad), bad


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8080/hooks/cityrelay",
        "https://hooks.example.org/cityrelay?token=a%20b",
        "http://[::1]:9000/",
    ],
)
def test_http_and_https_urls_are_endpoints(url: str) -> None:
    assert url_problem(url, frozenset()) is None


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("ftp://example.org/", "http"),
        ("file:///etc/passwd", "http"),
        ("javascript:alert(1)", "http"),
        ("http:///path-only", "host"),
        ("http://user:pw@example.org/", "password"),
        ("http://example.org/#part", "fragment"),
        ("http://example.org:99999/", "valid"),
        ("http://example.org:0/", "Port 0"),
        ("http://example.org/a b", "spaces"),
        ("http://例子.org/", "ASCII"),
        ("http://example.org/" + "a" * 2000, "2000"),
    ],
)
def test_other_urls_are_refused_saying_why(url: str, why: str) -> None:
    problem = url_problem(url, frozenset())
    assert problem is not None and why in problem


def test_the_host_allow_list_limits_where_webhooks_go() -> None:
    hosts = allowed_hosts(" 127.0.0.1 , LocalHost,,")
    assert hosts == {"127.0.0.1", "localhost"}
    assert url_problem("http://127.0.0.1:9/x", hosts) is None
    assert url_problem("http://localhost:9/x", hosts) is None
    refused = url_problem("https://example.org/x", hosts)
    assert refused is not None and "CITYRELAY_WEBHOOK_HOSTS" in refused
    assert allowed_hosts("") == frozenset()


def test_the_limits_are_the_ones_the_columns_have() -> None:
    assert webhooks.MAX_URL_CHARS == limits.MAX_WEBHOOK_URL_CHARS
    assert webhooks.MAX_SECRET_CHARS == limits.MAX_WEBHOOK_SECRET_CHARS
    assert webhooks.MIN_SECRET_CHARS == limits.MIN_WEBHOOK_SECRET_CHARS
