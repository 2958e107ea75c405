"""The one-tap reporter page for riders and couriers, and a report's status page.

Both pages are shells: plain HTML, CSS and vanilla JavaScript served from this package (no CDN,
no build step) that talk to the JSON API under /api/v1; the categories come in the page, which
spares a phone on a slow network a round trip. Scripts and styles are linked under their
content hash and kept a year (see web.assets). Register with ``app.register_blueprint(bp)``.

Every string the pages show is in ``pages_strings.json``, in Chinese and English: the server
renders each page in the language its address asks for (``?lang=en``; Chinese otherwise), and
the browser gets the same tables from ``/report/strings.js`` to switch language in place.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Response, current_app, render_template, request, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.exc import SQLAlchemyError

from intake.schemas import LANGUAGE_ALIASES
from models import queries
from web.assets import AssetBlueprint, VersionedBody, versioned, versioned_response
from web.db import read_session
from web.page_headers import add_page_headers, content_security_policy

bp = AssetBlueprint(
    "pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

# Everything the pages load comes from this server; photos are shown from blob: URLs before
# upload and from /media afterwards.
CONTENT_SECURITY_POLICY = content_security_policy(img_src="'self' blob: data:")


STRINGS_PATH = Path(__file__).with_name("pages_strings.json")
PAGE_LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
# The pages have one Chinese, simplified; a reader who asks for traditional Chinese gets it.
_PAGE_LANGUAGE_OF = {"zh-Hans": "zh", "zh-Hant": "zh", "en": "en"}
_HTML_LANG = {"zh": "zh-Hans", "en": "en"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


def page_strings() -> dict[str, dict[str, str]]:
    """Both languages' tables, read again only when the file changes."""
    return _read_strings(STRINGS_PATH.stat().st_mtime_ns)


@lru_cache(maxsize=1)
def _read_strings(version: int) -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = json.loads(STRINGS_PATH.read_text(encoding="utf-8"))
    return tables


def translate(lang: str, key: str, **params: Any) -> str:
    """The string ``key`` in ``lang`` with every ``{name}`` filled; a missing key or parameter
    is an error, never a raw placeholder on the page."""
    tables = page_strings()
    text = tables[lang].get(key, tables[DEFAULT_LANGUAGE][key])

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise KeyError(f"page string {key!r} needs the parameter {name!r}")
        return str(params[name])

    return _PLACEHOLDER.sub(fill, text)


def requested_language() -> str | None:
    """The page language ``?lang=`` asks for (``en``, ``zh``, ``zh-TW``, ``zh-Hant``, ``en-GB``
    …), or None when it asks for none the pages have."""
    raw = request.args.get("lang", "")
    folded = LANGUAGE_ALIASES.get(raw.strip().lower().replace("_", "-"))
    return _PAGE_LANGUAGE_OF.get(folded) if folded else None


@bp.context_processor
def _page_context() -> dict[str, Any]:
    requested = requested_language()
    lang = requested or DEFAULT_LANGUAGE

    def t(key: str, **params: Any) -> str:
        return translate(lang, key, **params)

    return {
        "asset": asset_url,
        "strings_url": strings_url,
        "lang": lang,
        "html_lang": _HTML_LANG[lang],
        "other_html_lang": _HTML_LANG["zh" if lang == "en" else "en"],
        "requested_lang": requested,
        "t": t,
        "timezone": current_app.config.get("TIMEZONE", "Asia/Shanghai"),
        "max_photos": current_app.config.get("MAX_PHOTOS", 5),
        "max_photo_bytes": current_app.config.get("MAX_PHOTO_BYTES", 10 * 1024 * 1024),
    }


def asset_url(filename: str) -> str:
    """The URL of a static file with its content hash (see web.assets): a phone keeps it for a
    year, and never runs a new page with an old cached script."""
    return bp.asset_url(filename)


def strings_url() -> str:
    """The URL of the strings script, with the hash of what it says (see asset_url)."""
    return url_for("pages.strings_script", v=_strings_script().digest)


def _strings_script() -> VersionedBody:
    return _strings_script_of(STRINGS_PATH.stat().st_mtime_ns)


@lru_cache(maxsize=1)
def _strings_script_of(version: int) -> VersionedBody:
    tables = json.dumps(_read_strings(version), ensure_ascii=False, separators=(",", ":"))
    return versioned(f"window.CityRelayStrings = {tables};\n".encode(), "text/javascript")


@bp.get("/report/strings.js")
def strings_script() -> ResponseReturnValue:
    """Both languages' tables for i18n.js, as a script file: the pages' CSP runs no inline
    script, and a data file would need a request the page waits for before it can speak."""
    return versioned_response(_strings_script())


def page_categories() -> list[dict[str, Any]] | None:
    """What the pages show of each category, to put in the page: on a slow network the form is
    whole a round trip sooner than when its script asks /api/v1/categories. None when the
    database cannot say: the page still loads, and its script asks the API."""
    try:
        return [
            {
                "code": category.code,
                "name_zh": category.name_zh,
                "name_en": category.name_en,
                "urgent": category.urgent,
            }
            for category in queries.categories(read_session())
        ]
    except SQLAlchemyError:
        current_app.logger.warning("categories left out of the page", exc_info=True)
        read_session().rollback()
        return None


@bp.get("/report")
def report_form() -> ResponseReturnValue:
    return render_template("report.html", categories=page_categories())


@bp.get("/report/<id:report_id>")
def report_status(report_id: int) -> ResponseReturnValue:
    return render_template("report_status.html", report_id=report_id, categories=page_categories())


@bp.after_request
def _page_headers(response: Response) -> Response:
    # The form keeps its draft in localStorage; a cached copy of the shell is harmless but an
    # old shell with new scripts is not.
    return add_page_headers(response, CONTENT_SECURITY_POLICY, "no-cache")
