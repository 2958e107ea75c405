"""Static files under a content version: every page links its scripts and styles as
``<static path>/<file>?v=<hash of the file's bytes>``, so a browser may keep such a URL for a
year without asking again (``immutable``), and a changed file gets a new URL with the next page.

Files are read once into memory (read again when their size or modification time changes) and
served from there with a strong ETag, the same hash. Only a URL whose version is the file's hash
now is immutable; an unversioned URL, an old version or a made-up one is answered with the file
as it is now, to be revalidated on every use (``no-cache``), so nothing wrong is kept a year.
"""

from __future__ import annotations

import hashlib
import mimetypes
import threading
from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, abort, request, url_for
from werkzeug.security import safe_join

# A year: the longest lifetime caches honour; the URL changes when the bytes do.
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
VERSION_ARG = "v"
# 64 bits of SHA-256: enough to tell a file's versions apart, short enough for a URL.
DIGEST_HEX_CHARS = 16


@dataclass(frozen=True)
class VersionedBody:
    """Bytes with the version (content hash) they are served under."""

    body: bytes
    digest: str
    mimetype: str


def versioned(body: bytes, mimetype: str) -> VersionedBody:
    digest = hashlib.sha256(body).hexdigest()[:DIGEST_HEX_CHARS]
    return VersionedBody(body, digest, mimetype)


def versioned_response(asset: VersionedBody) -> Response:
    """The asset, immutable when the request asks for its current version, with its hash as a
    strong ETag (a 304 for ``If-None-Match`` with it)."""
    response = Response(asset.body, mimetype=asset.mimetype)
    response.set_etag(asset.digest)
    current = request.args.get(VERSION_ARG) == asset.digest
    response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATE
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response.make_conditional(request)


class _FileCache:
    """Static files by path, each kept as long as its size and modification time stay."""

    def __init__(self) -> None:
        self._files: dict[Path, tuple[tuple[int, int], VersionedBody]] = {}
        self._lock = threading.Lock()

    def get(self, path: Path) -> VersionedBody | None:
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        stamp = (stat.st_mtime_ns, stat.st_size)
        cached = self._files.get(path)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        asset = versioned(path.read_bytes(), mimetype)
        with self._lock:
            self._files[path] = (stamp, asset)
        return asset


FILES = _FileCache()


class AssetBlueprint(Blueprint):
    """A blueprint whose static files are served from memory under their content version, and
    whose pages link them with ``asset_url``."""

    def static_file(self, filename: str) -> VersionedBody | None:
        if self.static_folder is None:
            return None
        path = safe_join(self.static_folder, filename)
        return FILES.get(Path(path)) if path is not None else None

    def asset_url(self, filename: str) -> str:
        """The URL of a static file with its content hash. A file that is not there gets no
        version (its URL answers 404), so a typo shows in the browser rather than being hidden."""
        asset = self.static_file(filename)
        version = {VERSION_ARG: asset.digest} if asset is not None else {}
        return url_for(f"{self.name}.static", filename=filename, **version)

    def send_static_file(self, filename: str) -> Response:
        asset = self.static_file(filename)
        if asset is None:
            abort(404)
        return versioned_response(asset)
