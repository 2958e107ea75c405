"""Report text → category code, with a calibrated confidence. Pure: no database, no Flask, no
network; the files read are the bundled corpus (routing/data/corpus.csv) and the model file.

Riders type one-handed or dictate, in simplified or traditional Chinese, English or a mix, with
pinyin-input typos and emoji.

- ``language``: language detection and the normal form (traditional → simplified, NFKC);
- ``corpus``: the bundled labelled corpus;
- ``model``: features, the linear model and its calibration (``TextClassifier``);
- ``artifact``: the trained model as a file named by its model id, so workers load it instead
  of retraining.

``model`` and ``artifact`` are imported on first use of one of their names: they bring in
scikit-learn, SciPy and joblib (about 100 MiB per process), which only the processes that
classify or train need. The web detects a report's language at filing (``language``) and must
not pay for them; nor must beat, which only sends tasks by name.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from routing.classify.corpus import SPLITS, STYLES, load_corpus
from routing.classify.language import DEFAULT_LANGUAGE, LANGUAGES, detect_language, normalize_text

if TYPE_CHECKING:
    from routing.classify.artifact import (
        TRAIN_COMMAND,
        ModelArtifactError,
        ModelFileMissingError,
        default_classifier,
        load,
        load_or_train,
        model_id,
        save,
        train_from_bundled_corpus,
    )
    from routing.classify.model import (
        FALLBACK_CATEGORY,
        MAX_ALTERNATIVES,
        RANDOM_STATE,
        Classification,
        TextClassifier,
    )

# Each name imported on first use, from the module that defines it.
_LAZY = {
    **dict.fromkeys(
        (
            "TRAIN_COMMAND",
            "ModelArtifactError",
            "ModelFileMissingError",
            "default_classifier",
            "load",
            "load_or_train",
            "model_id",
            "save",
            "train_from_bundled_corpus",
        ),
        "routing.classify.artifact",
    ),
    **dict.fromkeys(
        (
            "FALLBACK_CATEGORY",
            "MAX_ALTERNATIVES",
            "RANDOM_STATE",
            "Classification",
            "TextClassifier",
        ),
        "routing.classify.model",
    ),
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # once: later lookups find it without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_LANGUAGE",
    "FALLBACK_CATEGORY",
    "LANGUAGES",
    "MAX_ALTERNATIVES",
    "RANDOM_STATE",
    "SPLITS",
    "STYLES",
    "TRAIN_COMMAND",
    "Classification",
    "ModelArtifactError",
    "ModelFileMissingError",
    "TextClassifier",
    "default_classifier",
    "detect_language",
    "load",
    "load_corpus",
    "load_or_train",
    "model_id",
    "normalize_text",
    "save",
    "train_from_bundled_corpus",
]
