"""The classifier model file as an operator meets it: `cityrelay train-classifier`, the
CLASSIFIER_PATH setting, and the commands that refuse to start on a damaged or stale file."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from cityrelay.cli import main
from cityrelay.embedded import free_port
from cityrelay.settings import load_settings
from routing.classify import TextClassifier, artifact, model_id
from tests.conftest import PROJECT_ROOT

# Imports and one failed load take a few seconds; training would take longer, and reaching
# for Redis or the database would hang on the closed port or create the SQLite file.
REFUSAL_SECONDS = 30


def test_classifier_path_defaults_to_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings({"CITYRELAY_INSTANCE_PATH": str(tmp_path)})
    assert settings["CLASSIFIER_PATH"] == str(tmp_path.resolve() / "classifier.joblib")
    chosen = tmp_path / "models" / "c.joblib"
    settings = load_settings({"CITYRELAY_CLASSIFIER_PATH": str(chosen)})
    assert settings["CLASSIFIER_PATH"] == str(chosen)


def test_train_classifier_writes_the_model_and_prints_its_id(tmp_path: Path) -> None:
    path = tmp_path / "out" / "classifier.joblib"
    result = CliRunner().invoke(main, ["train-classifier", "--output", str(path)])
    assert result.exit_code == 0, result.output
    assert model_id() in result.output and str(path) in result.output
    assert artifact.load(path).model_id == model_id()


def test_train_classifier_writes_to_the_configured_path_and_replaces_a_damaged_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Training itself is covered above; here the in-process classifier stands in for speed.
    trained = artifact.default_classifier()
    monkeypatch.setattr(artifact, "train_from_bundled_corpus", lambda: trained)
    path = tmp_path / "classifier.joblib"
    path.write_bytes(b"damaged")
    monkeypatch.setenv("CITYRELAY_CLASSIFIER_PATH", str(path))
    result = CliRunner().invoke(main, ["train-classifier"])
    assert result.exit_code == 0, result.output
    assert str(path) in result.output
    assert artifact.load(path).model_id == model_id()


def test_eval_classifier_refuses_a_damaged_model_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "classifier.joblib"
    path.write_bytes(random.Random(2).randbytes(1024))
    monkeypatch.setenv("CITYRELAY_CLASSIFIER_PATH", str(path))
    result = CliRunner().invoke(main, ["eval-classifier", "--set", "held-out"])
    assert result.exit_code == 1
    assert "cityrelay train-classifier" in result.output and str(path) in result.output


def damaged(path: Path) -> None:
    path.write_bytes(random.Random(3).randbytes(4096))


def stale(path: Path) -> None:
    examples = [("路灯不亮", "street_light"), ("井盖没了", "manhole_cover")]
    artifact.save(TextClassifier.train(examples, model_id="0123456789abcdef"), path)


def refusing_env(tmp_path: Path, model: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env.update(
        # Nothing listens on this port, and the SQLite file must never be created.
        REDIS_URL=f"redis://127.0.0.1:{free_port()}/0",
        DATABASE_URL=f"sqlite:///{tmp_path / 'never.db'}",
        CITYRELAY_INSTANCE_PATH=str(tmp_path / "instance"),
        CITYRELAY_CLASSIFIER_PATH=str(model),
    )
    return env


@pytest.mark.parametrize("spoil", [damaged, stale], ids=["damaged", "stale"])
def test_worker_refuses_to_start_on_a_bad_model_file(tmp_path: Path, spoil) -> None:
    model = tmp_path / "classifier.joblib"
    spoil(model)
    before = model.read_bytes()
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "cityrelay.cli", "worker"],
        env=refusing_env(tmp_path, model),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.monotonic() - started
    assert result.returncode != 0, result.stdout + result.stderr
    assert "cityrelay train-classifier" in result.stderr and str(model) in result.stderr
    assert elapsed < REFUSAL_SECONDS, result.stderr
    assert not (tmp_path / "never.db").exists()
    assert model.read_bytes() == before


def test_up_refuses_to_start_on_a_bad_model_file(tmp_path: Path) -> None:
    model = tmp_path / "classifier.joblib"
    damaged(model)
    env = refusing_env(tmp_path, model)
    del env["REDIS_URL"], env["DATABASE_URL"]  # as `up` runs on a fresh machine
    env["PORT"] = str(free_port())
    result = subprocess.run(
        [sys.executable, "-m", "cityrelay.cli", "up"],
        env=env,
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cityrelay train-classifier" in result.stderr
    # It stopped before the database and before any child process.
    assert not (tmp_path / "instance" / "cityrelay.db").exists()
    assert "embedded Redis" not in result.stdout
