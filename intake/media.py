"""Serves stored photos."""

from __future__ import annotations

import re

from flask import Blueprint, current_app, send_from_directory
from flask.typing import ResponseReturnValue

from web.errors import ApiError

bp = Blueprint("media", __name__)

_NAME = re.compile(r"^[0-9a-f]{64}\.(jpg|png|webp|heic)$")


@bp.get("/media/<name>")
def photo(name: str) -> ResponseReturnValue:
    if not _NAME.match(name):
        raise ApiError(404, "not_found", "No such photo.")
    return send_from_directory(current_app.config["MEDIA_DIR"], name, max_age=86400)
