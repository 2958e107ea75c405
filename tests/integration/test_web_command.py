"""`cityrelay web`: what it hands gunicorn, which it becomes (os.execv)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cityrelay.cli import WEB_MMAP_THRESHOLD_BYTES, main


class Exec(Exception):
    """Stands for os.execv: the command ends where gunicorn would take over."""


def run_web(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> dict[str, Any]:
    """`cityrelay web` with ``environ`` as the whole environment; gunicorn's argv and the
    environment it would start with."""
    seen: dict[str, Any] = {}

    def execv(path: str, argv: list[str]) -> None:
        seen.update(path=path, argv=argv, environ=dict(os.environ))
        raise Exec

    # A copy of its own: what the command sets in its environment stays in this test.
    monkeypatch.setattr(os, "environ", dict(environ))
    monkeypatch.setattr(os, "execv", execv)
    result = CliRunner().invoke(main, ["web", "--port", "8123"])
    assert isinstance(result.exception, Exec), result.output
    return seen


@pytest.fixture
def environ(tmp_path: Path) -> dict[str, str]:
    kept = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CITYRELAY_", "PROMETHEUS_", "MALLOC_"))
    }
    return {
        **kept,
        "REDIS_URL": "redis://127.0.0.1:9/0",
        "CITYRELAY_INSTANCE_PATH": str(tmp_path / "instance"),
    }


def test_web_workers_hand_large_blocks_back_to_the_system(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    seen = run_web(monkeypatch, environ)
    assert seen["environ"]["MALLOC_MMAP_THRESHOLD_"] == str(WEB_MMAP_THRESHOLD_BYTES)
    assert seen["argv"][1:3] == ["-m", "gunicorn"]
    assert seen["argv"][-1] == "wsgi:app"
    assert "127.0.0.1:8123" in seen["argv"]


def test_an_operators_own_malloc_setting_wins(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    seen = run_web(monkeypatch, {**environ, "MALLOC_MMAP_THRESHOLD_": "65536"})
    assert seen["environ"]["MALLOC_MMAP_THRESHOLD_"] == "65536"


def test_without_a_broker_the_web_does_not_start(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]
) -> None:
    monkeypatch.setattr(os, "environ", {k: v for k, v in environ.items() if k != "REDIS_URL"})
    result = CliRunner().invoke(main, ["web"])
    assert result.exit_code == 2
    assert "REDIS_URL is not set" in result.output
