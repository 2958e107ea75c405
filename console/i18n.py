"""The console's strings, in Chinese and English (``strings.json``). The language is Chinese
unless ``?lang=en`` asked for English; the choice is kept in the session."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

STRINGS_PATH = Path(__file__).with_name("strings.json")
LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"
HTML_LANG = {"zh": "zh-Hans", "en": "en"}
_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@lru_cache(maxsize=1)
def strings() -> dict[str, dict[str, str]]:
    tables: dict[str, dict[str, str]] = json.loads(STRINGS_PATH.read_text(encoding="utf-8"))
    return tables


def has(key: str) -> bool:
    return key in strings()[DEFAULT_LANGUAGE]


def translate(lang: str, key: str, **params: Any) -> str:
    """The string ``key`` in ``lang`` with every ``{name}`` filled; a missing parameter is an
    error, never a raw placeholder on the page."""
    tables = strings()
    text = tables.get(lang, tables[DEFAULT_LANGUAGE]).get(key, tables[DEFAULT_LANGUAGE][key])

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise KeyError(f"console string {key!r} needs the parameter {name!r}")
        return str(params[name])

    return _PLACEHOLDER.sub(fill, text)


def language_of(raw: str | None) -> str | None:
    """``zh``/``en`` for what ``?lang=`` says (``en-GB``, ``zh-Hant`` …), None for the rest."""
    if not raw:
        return None
    base = raw.strip().lower().replace("_", "-").split("-")[0]
    return base if base in LANGUAGES else None
