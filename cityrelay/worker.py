"""The Celery app a worker or beat process runs: ``celery -A cityrelay.worker worker``, or
``cityrelay worker`` / ``cityrelay beat``. Importing this module builds the Flask app."""

from cityrelay.app import create_app

flask_app = create_app()
celery_app = flask_app.extensions["celery"]
