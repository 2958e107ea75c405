"""The Flask application factory: settings, the database, Celery, and one blueprint per door."""

from __future__ import annotations

from typing import Any

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from cityrelay import observability, openapi
from cityrelay.celery_app import celery_init_app
from cityrelay.settings import instance_secret_key, load_settings
from cityrelay.slow_bodies import SlowBodyGuard
from console.views import bp as console_bp
from dashboards.directory import bp as directory_bp
from dashboards.pages import bp as dashboard_pages_bp
from dashboards.stats import bp as stats_bp
from intake.media import bp as media_bp
from intake.open311 import bp as open311_bp
from intake.open311 import open311_http_error
from intake.pages import bp as pages_bp
from intake.rechecks import bp as rechecks_bp
from intake.reporters import bp as reporters_bp
from intake.reports import bp as reports_bp
from models.session import Database
from offices.admin import bp as admin_bp
from offices.calendars import bp as calendars_bp
from offices.cases import bp as cases_bp
from offices.notifications import bp as notifications_bp
from offices.queue import case_bp as case_view_bp
from offices.queue import queue_bp
from services.photo_store import check_photo_store_setting
from web import compression, db, errors, points, rate_limits, sessions
from web.guards import limit_request_size, refuse_unfit_characters
from web.json_bodies import BoundedJSONProvider
from web.urls import CONVERTERS
from workers.base import dispatcher


def create_app(config: dict[str, Any] | None = None) -> Flask:
    # Static files belong to the pages blueprint; the app itself serves none.
    app = Flask(__name__, static_folder=None)
    app.config.from_mapping(load_settings())
    if config:
        app.config.update(config)
    app.json = BoundedJSONProvider(app)
    check_photo_store_setting(app.config["PHOTO_STORE"])
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app.config["INSTANCE_PATH"])
    sessions.init_app(app)
    points.init_app(app)
    app.url_map.converters.update(CONVERTERS)  # before any blueprint's routes are bound

    database = Database.from_url(
        app.config["DATABASE_URL"],
        lock_timeout=app.config["DB_LOCK_TIMEOUT_SECONDS"],
        statement_timeout=app.config["DB_STATEMENT_TIMEOUT_SECONDS"],
    )
    celery = celery_init_app(app, database)
    db.init_app(app, database, dispatcher(celery, app.logger))
    observability.init_app(app)  # /healthz, /readyz, /metrics; request ids
    compression.init_app(app)  # runs before observability's hook: its time and status count it
    errors.register_error_handlers(app, {"/open311/": open311_http_error})
    app.before_request(limit_request_size)
    app.before_request(refuse_unfit_characters)
    rate_limits.init_app(app)
    if hops := int(app.config.get("PROXY_FIX_HOPS") or 0):
        # The client's address and scheme as the proxies in front of us saw them.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]
    for blueprint in (
        reports_bp,
        rechecks_bp,
        reporters_bp,
        directory_bp,
        stats_bp,
        admin_bp,
        calendars_bp,
        notifications_bp,
        cases_bp,
        queue_bp,
        case_view_bp,
        media_bp,
        openapi.bp,
        open311_bp,
        pages_bp,
        console_bp,
        dashboard_pages_bp,
    ):
        app.register_blueprint(blueprint)
    config = app.config
    app.wsgi_app = SlowBodyGuard(  # type: ignore[method-assign]
        app.wsgi_app,
        grace_seconds=config["SLOW_BODY_GRACE_SECONDS"],
        min_bytes_per_second=config["SLOW_BODY_MIN_BYTES_PER_SECOND"],
        max_bytes=config["MAX_BODY_BYTES"],
        max_multipart_bytes=config["MAX_PHOTOS"] * config["MAX_PHOTO_BYTES"]
        + config["MAX_BODY_BYTES"],
    )
    return app
