"""The headers every server-rendered page carries: a Content Security Policy that lets a page
load only what this server serves, no MIME sniffing, no referrer to other sites, and a cache
rule of the door's choosing."""

from __future__ import annotations

from flask import Response


def content_security_policy(img_src: str = "'self' data:") -> str:
    """Everything from this server only; ``img_src`` may add sources for images (``blob:``
    for photos previewed before upload)."""
    return "; ".join(
        [
            "default-src 'self'",
            f"img-src {img_src}",
            "script-src 'self'",
            "style-src 'self'",
            "connect-src 'self'",
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def add_page_headers(response: Response, policy: str, cache_control: str) -> Response:
    """The page headers on an HTML answer; a view that set one already keeps its own."""
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy", policy)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Cache-Control", cache_control)
    return response
