"""gzip for the text this server answers with (HTML, CSS, JavaScript, JSON, SVG, XML, plain
text), for every door at once: a rider's phone on a slow network downloads a page and its
scripts in about a fifth of the bytes.

A response is compressed when the client's Accept-Encoding takes gzip and it is a whole body of
a compressible type, at least ``MIN_BYTES`` long, not already encoded, and not exempt (see
``leave_uncompressed``). Streamed bodies and files passed straight through (exports, photos) are
left as they are, and so are images: they are compressed already. Every answer of a
compressible type says ``Vary: Accept-Encoding``, so a cache keeps the two variants apart.

A compressed variant gets its own ETag (the identity ETag with ``-gzip`` appended): it is other
bytes. A conditional request naming it is answered 304 here, after the view compared the
identity ETag. Bodies with a strong ETag (static files, the pages' strings script) are
compressed once, harder, and kept: the ETag names their bytes.
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict

from flask import Flask, Response, g, request

MIN_BYTES = 500
# zlib's default: about 95 % of level 9's saving at a third of its time, for bodies made anew.
LEVEL = 6
# Kept bodies are compressed once per process: the smallest output is worth the time.
KEPT_LEVEL = 9
KEPT_BODIES = 64
ETAG_SUFFIX = "-gzip"
COMPRESSIBLE_TYPES = frozenset(
    {
        "application/javascript",
        "application/json",
        "application/problem+json",
        "application/xml",
        "image/svg+xml",
    }
)
# A status whose body is none, or only a part of one.
NO_WHOLE_BODY = frozenset({204, 206, 304})


def init_app(app: Flask) -> None:
    app.after_request(compress)


def leave_uncompressed() -> None:
    """Answer this request's body as it is. For pages that hold a secret (a CSRF token, a
    signed-in user's cases) next to text the request chose: the sizes of compressed answers
    would let a site that makes the browser send such requests guess the secret (BREACH)."""
    g.leave_uncompressed = True


def is_compressible(mimetype: str) -> bool:
    return (
        mimetype.startswith("text/")
        or mimetype in COMPRESSIBLE_TYPES
        or mimetype.endswith(("+json", "+xml"))
    )


def compress(response: Response) -> Response:
    if not is_compressible(response.mimetype):
        return response
    response.vary.add("Accept-Encoding")
    if (
        response.status_code in NO_WHOLE_BODY
        or response.status_code < 200
        or response.direct_passthrough
        or response.is_streamed
        or "Content-Encoding" in response.headers
        or g.get("leave_uncompressed", False)
        or request.accept_encodings.quality("gzip") <= 0
    ):
        return response
    body = response.get_data()
    if len(body) < MIN_BYTES:
        return response
    etag, weak = response.get_etag()
    if etag and not weak:
        compressed = _KEPT.get((request.path, etag, len(body)), body)
    else:
        compressed = gzip.compress(body, LEVEL, mtime=0)
    response.set_data(compressed)
    response.headers["Content-Encoding"] = "gzip"
    if etag:
        response.set_etag(etag + ETAG_SUFFIX, weak)
        if request.method in ("GET", "HEAD"):
            # The view compared the identity ETag; the client may hold this variant's.
            response.make_conditional(request)
    return response


class _KeptBodies:
    """Compressed bodies by (path, strong ETag, length), the least recently used dropped."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._bodies: OrderedDict[tuple[str, str, int], bytes] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int], body: bytes) -> bytes:
        with self._lock:
            kept = self._bodies.get(key)
            if kept is not None:
                self._bodies.move_to_end(key)
                return kept
        compressed = gzip.compress(body, KEPT_LEVEL, mtime=0)
        with self._lock:
            self._bodies[key] = compressed
            while len(self._bodies) > self._size:
                self._bodies.popitem(last=False)
        return compressed


_KEPT = _KeptBodies(KEPT_BODIES)
