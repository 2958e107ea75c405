"""Serves stored photos from the photo store (``PHOTO_STORE``), so every web machine serves every
photo. The type sent is the one sniffed from the stored bytes, never guessed from the name, and
the answer tells browsers not to sniff, run or frame it: a file that is not an image (put in a
media folder by hand) is never shown as a page.

A photo's name is the SHA-256 of its bytes, so what a name serves never changes: caches may keep
it for a year without asking again (``immutable``), and the hash is its strong ETag, which a
revalidation (``If-None-Match``) is answered 304 by without reading the photo."""

from __future__ import annotations

from io import BytesIO

from flask import Blueprint, Response, request, send_file
from flask.typing import ResponseReturnValue

from services.photo_store import parse_photo_name
from services.photos import sniff_image_type
from web.db import read_session
from web.errors import ApiError
from web.uploads import photo_store

bp = Blueprint("media", __name__)

# Nothing in an answer from /media may load, run, submit or be framed.
MEDIA_CSP = "default-src 'none'; sandbox; frame-ancestors 'none'"
ONE_YEAR_SECONDS = 365 * 24 * 3600
CACHE_CONTROL = f"public, max-age={ONE_YEAR_SECONDS}, immutable"


def _not_found() -> ApiError:
    return ApiError(404, "not_found", "No such photo.")


@bp.get("/media/<name>")
def photo(name: str) -> ResponseReturnValue:
    parsed = parse_photo_name(name)
    if parsed is None:
        raise _not_found()
    sha256 = parsed[0]
    store = photo_store(read_session())
    if request.if_none_match and (
        request.if_none_match.star_tag or request.if_none_match.contains_weak(sha256)
    ):
        if not store.exists(name):
            raise _not_found()
        return _with_photo_headers(Response(status=304), name, sha256)
    stored = store.get(name)
    kind = sniff_image_type(stored.data[:16]) if stored is not None else None
    if stored is None or kind is None:
        raise _not_found()
    # send_file answers Range requests (206) as it did for files on disk.
    response = send_file(
        BytesIO(stored.data), mimetype=kind[0], etag=sha256, conditional=True, max_age=None
    )
    return _with_photo_headers(response, name, sha256)


def _with_photo_headers(response: Response, name: str, sha256: str) -> Response:
    response.set_etag(sha256)
    response.headers["Cache-Control"] = CACHE_CONTROL
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = MEDIA_CSP
    # The name is 64 hex digits and a known extension (checked above): safe to quote as it is.
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    return response
