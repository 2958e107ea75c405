"""The console's strings, in Chinese and English (``strings.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from web.i18n import DEFAULT_LANGUAGE, HTML_LANG, LANGUAGES, Strings, language_of

__all__ = ["DEFAULT_LANGUAGE", "HTML_LANG", "LANGUAGES", "has", "language_of", "translate"]

STRINGS = Strings(Path(__file__).with_name("strings.json"))


def has(key: str) -> bool:
    return STRINGS.has(key)


def translate(lang: str, key: str, **params: Any) -> str:
    return STRINGS.translate(lang, key, **params)
