"""The web edge of CityRelay: the Flask application factory."""

from __future__ import annotations

from typing import Any

from flask import Flask

from intake.config import load_settings


def create_app(config: dict[str, Any] | None = None) -> Flask:
    # Static files belong to the pages blueprint; the app itself serves none.
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(load_settings())
    if config:
        app.config.update(config)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]  # Chinese stays readable in JSON
    app.json.sort_keys = False  # type: ignore[attr-defined]

    from intake import db, errors
    from intake.admin import bp as admin_bp
    from intake.api import bp as api_bp
    from intake.cases import bp as cases_bp
    from intake.media import bp as media_bp
    from intake.open311 import bp as open311_bp
    from intake.openapi import bp as openapi_bp
    from intake.pages import bp as pages_bp
    from workers.celery_app import celery_init_app

    db.init_app(app)
    errors.register_error_handlers(app)
    celery_init_app(app)
    app.register_blueprint(api_bp)
    app.register_blueprint(admin_bp)
    app.register_blueprint(cases_bp)
    app.register_blueprint(media_bp)
    app.register_blueprint(openapi_bp)
    app.register_blueprint(open311_bp)
    app.register_blueprint(pages_bp)
    return app
