"""WSGI entry point: `gunicorn wsgi:app`."""

from cityrelay.app import create_app

app = create_app()
