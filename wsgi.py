"""WSGI entry point: `gunicorn wsgi:app`."""

from intake import create_app

app = create_app()
