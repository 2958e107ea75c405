"""Serves stored photos. The type sent is the one sniffed from the stored bytes, never guessed
from the name, and the answer tells browsers not to sniff, run or frame it: a file that is not
an image (put in the media folder by hand, or stored before uploads were re-encoded) is never
shown as a page."""

from __future__ import annotations

import re
from pathlib import Path

from flask import Blueprint, current_app, send_file
from flask.typing import ResponseReturnValue

from services.photos import sniff_image_type
from web.errors import ApiError

bp = Blueprint("media", __name__)

_NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp|heic)$")

# Nothing in an answer from /media may load, run, submit or be framed.
MEDIA_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"


@bp.get("/media/<name>")
def photo(name: str) -> ResponseReturnValue:
    if not _NAME.match(name):
        raise ApiError(404, "not_found", "No such photo.")
    path = Path(current_app.config["MEDIA_DIR"]) / name
    try:
        with path.open("rb") as stored:
            kind = sniff_image_type(stored.read(16))
    except (FileNotFoundError, IsADirectoryError):
        kind = None
    if kind is None:
        raise ApiError(404, "not_found", "No such photo.")
    response = send_file(path, mimetype=kind[0], max_age=86400, conditional=True)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = MEDIA_CSP
    # The name is 64 hex digits and a known extension (checked above): safe to quote as it is.
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response
