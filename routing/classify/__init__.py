"""Report text → category code, with a calibrated confidence. Pure: no database, no Flask, no
network; the files read are the bundled corpus (routing/data/corpus.csv) and the model file.

Riders type one-handed or dictate, in simplified or traditional Chinese, English or a mix, with
pinyin-input typos and emoji.

- ``language``: language detection and the normal form (traditional → simplified, NFKC);
- ``corpus``: the bundled labelled corpus;
- ``model``: features, the linear model and its calibration (``TextClassifier``);
- ``artifact``: the trained model as a file named by its model id, so workers load it instead
  of retraining.
"""

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
from routing.classify.corpus import SPLITS, STYLES, load_corpus
from routing.classify.language import DEFAULT_LANGUAGE, LANGUAGES, detect_language, normalize_text
from routing.classify.model import (
    FALLBACK_CATEGORY,
    MAX_ALTERNATIVES,
    RANDOM_STATE,
    Classification,
    TextClassifier,
)

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
