"""What each kind of process imports, each checked in a fresh interpreter as its real entry point
starts it. The classifier's libraries (scikit-learn, SciPy, joblib: about 100 MiB in every
process that imports them) belong to the Celery workers, which load the model before forking
their pool (tests/e2e/test_worker_preload.py); the web's processes and beat never import them.
gunicorn's master process does not run the app, and imports none of it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PROJECT_ROOT

# Only the workers that classify (or `cityrelay train-classifier`) import these.
CLASSIFIER_ONLY = (
    "sklearn",
    "scipy",
    "joblib",
    "routing.classify.model",
    "routing.classify.artifact",
)
# What gunicorn's master would hold for nothing: it forks the workers that import the app.
APP_ONLY = ("flask", "sqlalchemy", "celery", "numpy", "PIL", "wsgi", "cityrelay.app")

# Counts the argon2 hashes made while the entry point is imported: a hash takes 64 MiB.
COUNT_HASHES = """
import argon2

hashes = []
_hash = argon2.PasswordHasher.hash
def _counted(self, *args, **kwargs):
    hashes.append(1)
    return _hash(self, *args, **kwargs)
argon2.PasswordHasher.hash = _counted
"""

WEB = "import wsgi\nresult['app'] = wsgi.app.name"
# What `cityrelay beat` runs before its scheduler: the Celery app of cityrelay.worker, then
# Celery's loader, as celery.apps.beat.Beat.init_loader calls it (it imports the task modules).
BEAT = """
from cityrelay.worker import celery_app
celery_app.loader.init_worker()
celery_app.finalize()
result['tasks'] = sorted(celery_app.tasks)
result['scheduled'] = sorted(e['task'] for e in celery_app.conf.beat_schedule.values())
"""
GUNICORN_MASTER = """
import logging.config

from cityrelay import gunicorn_conf

logging.config.dictConfig(gunicorn_conf.logconfig_dict)
logging.getLogger("gunicorn.error").info("configured")
"""


def run_fresh(code: str, tmp_path: Path, *, count_hashes: bool = False) -> dict[str, Any]:
    """Run ``code`` in a new interpreter; what it put in ``result``, and ``modules``: every
    module it imported."""
    script = "\n".join(
        [
            "import json, sys",
            COUNT_HASHES if count_hashes else "hashes = []",
            "result = {}",
            code,
            "result['modules'] = sorted(sys.modules)",
            "result['hashes'] = len(hashes)",
            "print(json.dumps(result))",
        ]
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CITYRELAY_", "PROMETHEUS_"))
        and key not in {"DATABASE_URL", "REDIS_URL"}
    }
    env.update(
        PYTHONPATH=str(PROJECT_ROOT),
        DATABASE_URL=f"sqlite:///{tmp_path / 'cityrelay.db'}",
        CITYRELAY_INSTANCE_PATH=str(tmp_path / "instance"),
        # Nothing connects while importing; a broker nobody answers at proves it.
        REDIS_URL="redis://127.0.0.1:9/0",
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def loaded(modules: list[str], names: tuple[str, ...]) -> list[str]:
    return [m for m in modules if m in names or m.startswith(tuple(f"{n}." for n in names))]


def test_the_web_app_imports_no_classifier_library_and_hashes_no_password(
    tmp_path: Path,
) -> None:
    result = run_fresh(WEB, tmp_path, count_hashes=True)
    assert result["app"] == "cityrelay.app"
    assert loaded(result["modules"], CLASSIFIER_ONLY) == []
    # Filing detects the report's language with the classifier's text folding, which is light.
    assert "routing.classify.language" in result["modules"]
    # The dummy hash for unknown usernames is made at the first login, not at import.
    assert result["hashes"] == 0


def test_beat_imports_no_classifier_library_yet_knows_every_task_it_schedules(
    tmp_path: Path,
) -> None:
    result = run_fresh(BEAT, tmp_path, count_hashes=True)
    assert loaded(result["modules"], CLASSIFIER_ONLY) == []
    assert "workers.tasks" in result["modules"]
    assert set(result["scheduled"]) <= set(result["tasks"])
    assert "cityrelay.process_report" in result["tasks"]
    assert result["hashes"] == 0


def test_gunicorns_master_imports_none_of_the_app(tmp_path: Path) -> None:
    result = run_fresh(GUNICORN_MASTER, tmp_path)
    assert loaded(result["modules"], CLASSIFIER_ONLY + APP_ONLY) == []
    assert "cityrelay.logs" in result["modules"]


def test_a_classifier_name_imports_the_model_on_first_use(tmp_path: Path) -> None:
    """The check above can fail: naming the model is enough to bring scikit-learn in."""
    result = run_fresh(
        "import routing.classify\nresult['name'] = routing.classify.TextClassifier.__name__",
        tmp_path,
    )
    assert result["name"] == "TextClassifier"
    assert "sklearn" in result["modules"]
    assert "routing.classify.model" in result["modules"]


def test_an_unknown_name_of_the_classifier_package_is_an_attribute_error() -> None:
    import routing.classify

    with pytest.raises(AttributeError, match="no attribute 'TextClassifer'"):
        routing.classify.TextClassifer  # noqa: B018
    assert {"TextClassifier", "load_or_train", "detect_language"} <= set(dir(routing.classify))
