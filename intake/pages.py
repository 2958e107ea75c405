"""The one-tap reporter page for riders and couriers, and a report's status page.

Both pages are shells: plain HTML, CSS and vanilla JavaScript served from this package (no CDN,
no build step) that talk to the JSON API under /api/v1. Register with
``app.register_blueprint(bp)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, url_for
from flask.typing import ResponseReturnValue

bp = Blueprint(
    "pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# Everything the pages load comes from this server; photos are shown from blob: URLs before
# upload and from /media afterwards.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self' blob: data:",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


@bp.context_processor
def _page_context() -> dict[str, Any]:
    return {
        "asset": asset_url,
        "timezone": current_app.config.get("TIMEZONE", "Asia/Shanghai"),
        "max_photos": current_app.config.get("MAX_PHOTOS", 5),
        "max_photo_bytes": current_app.config.get("MAX_PHOTO_BYTES", 10 * 1024 * 1024),
    }


def asset_url(filename: str) -> str:
    """The URL of a static file with its modification time, so a phone never runs a new page
    with an old cached script."""
    assert bp.static_folder is not None
    path = Path(bp.static_folder) / filename
    version = int(path.stat().st_mtime) if path.is_file() else 0
    return url_for("pages.static", filename=filename, v=version)


@bp.get("/report")
def report_form() -> ResponseReturnValue:
    return render_template("report.html")


@bp.get("/report/<int:report_id>")
def report_status(report_id: int) -> ResponseReturnValue:
    return render_template("report_status.html", report_id=report_id)


@bp.after_request
def _page_headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        # The form keeps its draft in localStorage; a cached copy of the shell is harmless but an
        # old shell with new scripts is not.
        response.headers.setdefault("Cache-Control", "no-cache")
    return response
