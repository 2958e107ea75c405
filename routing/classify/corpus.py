"""The bundled labelled corpus (routing/data/corpus.csv) the classifier is trained and
measured on."""

from __future__ import annotations

import csv
import io
from importlib import resources

SPLITS = ("train", "test")
# "short": a rider's one-handed note or dictation, at most 60 characters; "long": the fuller
# description a resident types into a city app or hotline form, 61–400 characters. Both train
# the model; the held-out targets are measured on the short (rider-style) reports.
STYLES = ("short", "long")


def corpus_bytes() -> bytes:
    """The corpus file exactly as shipped; the model id is computed over these bytes."""
    return resources.files("routing").joinpath("data", "corpus.csv").read_bytes()


def load_corpus(split: str | None = None, style: str | None = None) -> list[tuple[str, str]]:
    """(text, category) pairs from the bundled corpus; ``split`` is "train", "test" or None
    for both, ``style`` is "short", "long" or None for both."""
    if split is not None and split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, not {split!r}")
    if style is not None and style not in STYLES:
        raise ValueError(f"style must be one of {STYLES} or None, not {style!r}")
    raw = corpus_bytes().decode("utf-8")
    return [
        (row["text"], row["category"])
        for row in csv.DictReader(io.StringIO(raw))
        if (split is None or row["split"] == split) and (style is None or row["style"] == style)
    ]
