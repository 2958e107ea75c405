"""The Celery app a worker or beat process runs: ``celery -A cityrelay.worker worker``, or
``cityrelay worker`` / ``cityrelay beat``. Importing this module builds the Flask app, whose
statements may run as long as the worker's limit (CITYRELAY_WORKER_DB_STATEMENT_TIMEOUT_SECONDS)."""

from cityrelay.app import create_app
from cityrelay.settings import load_settings

flask_app = create_app(
    {"DB_STATEMENT_TIMEOUT_SECONDS": load_settings()["WORKER_DB_STATEMENT_TIMEOUT_SECONDS"]}
)
celery_app = flask_app.extensions["celery"]
