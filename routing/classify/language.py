"""Which language a report is written in, and the one normal form every text is classified in.

Riders write simplified or traditional Chinese, English, or a mix. Traditional text is folded to
simplified (OpenCC) so both scripts share one vocabulary; full-width letters and digits are
folded to half-width (NFKC).
"""

from __future__ import annotations

import functools
import re
import unicodedata

import opencc

LANGUAGES = ("zh-Hans", "zh-Hant", "en", "mixed")
# Text with neither Han characters nor Latin words (digits, emoji) says nothing about its
# language; most reports come from mainland cities, so that is the least surprising answer.
DEFAULT_LANGUAGE = "zh-Hans"

HAN_CHARACTER = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ffff]")
LATIN_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")
_WHITESPACE = re.compile(r"\s+")
# A Chinese word averages about 1.5 characters; dividing by this puts Han characters and English
# words on a comparable scale when deciding whether a text is mixed.
_HAN_CHARS_PER_WORD = 1.5
# Below this share the minority script is incidental (a brand, a landmark), not code-switching;
# one English word in a ten-character Chinese sentence ("井盖 missing 在春江小区门口") is above it.
_MIXED_MIN_SHARE = 0.1
# Latin-letter words that Chinese speakers write inside ordinary Chinese sentences.
_LOANWORDS = frozenset({"app", "ok", "wifi", "vip", "pos", "diy", "pm", "gps"})


@functools.cache
def converter(config: str) -> opencc.OpenCC:
    """The OpenCC converter for ``config`` ("t2s", "s2t", ...), one per process: loading its
    dictionaries takes tens of milliseconds."""
    return opencc.OpenCC(config)


def _script_changes(config: str, text: str) -> int:
    converted = converter(config).convert(text)
    if len(converted) == len(text):
        return sum(a != b for a, b in zip(text, converted, strict=True))
    # Phrase-level conversions can change the length; fall back to one character at a time.
    return sum(converter(config).convert(ch) != ch for ch in text)


def _english_words(text: str) -> list[str]:
    # Single letters (B口, C出口), short all-caps acronyms (KTV, SUV, KFC) and loanwords are not
    # English when they sit inside a Chinese sentence.
    return [
        w
        for w in LATIN_WORD.findall(text)
        if len(w) > 1 and not (w.isupper() and len(w) <= 4) and w.lower() not in _LOANWORDS
    ]


def detect_language(text: str) -> str:
    """One of "zh-Hans", "zh-Hant", "en" or "mixed"."""
    text = unicodedata.normalize("NFKC", text)
    han = "".join(HAN_CHARACTER.findall(text))
    if not han:
        return "en" if LATIN_WORD.search(text) else DEFAULT_LANGUAGE
    english = len(_english_words(text))
    english_share = english / (english + len(han) / _HAN_CHARS_PER_WORD)
    if english_share >= 1 - _MIXED_MIN_SHARE:
        return "en"
    if english_share >= _MIXED_MIN_SHARE:
        return "mixed"
    # Most characters are common to both scripts; compare how many only exist in one of them.
    traditional_only = _script_changes("t2s", han)
    simplified_only = _script_changes("s2t", han)
    return "zh-Hant" if traditional_only > simplified_only else "zh-Hans"


def normalize_text(text: str) -> str:
    """Full-width → half-width (NFKC), traditional → simplified, lower case, single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = converter("t2s").convert(text)
    return _WHITESPACE.sub(" ", text.lower()).strip()
