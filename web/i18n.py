"""Server-rendered pages' strings in Chinese and English: one JSON file per door, a table per
language. A page is Chinese unless ``?lang=en`` asked for English; the choice is kept in the
session."""

from __future__ import annotations

import json
import re
from functools import cached_property
from pathlib import Path
from typing import Any

from flask import request, session

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
HTML_LANG = {"zh": "zh-Hans", "en": "en"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class Strings:
    """The tables of one ``strings.json``: ``{"zh": {key: text}, "en": {key: text}}``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @cached_property
    def tables(self) -> dict[str, dict[str, str]]:
        tables: dict[str, dict[str, str]] = json.loads(self.path.read_text(encoding="utf-8"))
        return tables

    def has(self, key: str) -> bool:
        return key in self.tables[DEFAULT_LANGUAGE]

    def translate(self, lang: str, key: str, **params: Any) -> str:
        """The string ``key`` in ``lang`` with every ``{name}`` filled; a missing parameter is
        an error, never a raw placeholder on the page."""
        default = self.tables[DEFAULT_LANGUAGE]
        text = self.tables.get(lang, default).get(key, default[key])

        def fill(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in params:
                raise KeyError(f"string {key!r} needs the parameter {name!r}")
            return str(params[name])

        return _PLACEHOLDER.sub(fill, text)


def remembered_language() -> str:
    """This request's page language: ``?lang=`` when it names one (kept in the session for the
    next pages), else the session's, else Chinese."""
    asked = language_of(request.args.get("lang"))
    if asked is not None and session.get("lang") != asked:
        session["lang"] = asked
    kept = session.get("lang")
    return kept if kept in LANGUAGES else DEFAULT_LANGUAGE


def language_of(raw: str | None) -> str | None:
    """``zh``/``en`` for what ``?lang=`` says (``en-GB``, ``zh-Hant`` …), None for the rest."""
    if not raw:
        return None
    base = raw.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None
