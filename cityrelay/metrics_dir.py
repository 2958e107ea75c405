"""The folder prometheus_client's multiprocess mode shares between processes. It must be in
the environment before prometheus_client is first imported, so this module never imports it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ENV = "PROMETHEUS_MULTIPROC_DIR"


def use_metrics_dir(instance_path: str, name: str) -> str:
    """``PROMETHEUS_MULTIPROC_DIR`` for this process and the ones it starts: the one already
    set (by ``cityrelay up`` for its children, or by the operator) is kept as it is; otherwise
    ``<instance>/prometheus/<name>``, emptied first, since files of processes of an earlier run
    would be added to this run's figures."""
    chosen = os.environ.get(ENV)
    if chosen:
        Path(chosen).mkdir(parents=True, exist_ok=True)
        return chosen
    folder = Path(instance_path) / "prometheus" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    os.environ[ENV] = str(folder)
    return str(folder)
