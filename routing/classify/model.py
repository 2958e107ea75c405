"""The features and the model: report text → category with a calibrated confidence.

Character n-grams cope with pinyin-input typos, emoji and mixed scripts without a word
segmenter: a typo such as 井概 for 井盖 still shares the 井 unigram and the surrounding n-grams.

The model is a linear SVM over TF-IDF features whose per-category scores are turned into
probabilities by a softmax with one temperature, fitted on held-out folds of the training data.
On the train split's cross-validation it was about two points more accurate than a multinomial
LogisticRegression and trains roughly ten times faster.

Everything that decides what a trained model computes lives here and in ``language`` and
``corpus``; the model id (``artifact.model_id``) is computed over their source, so an edit to
any of them makes a saved model file stale.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import FeatureUnion
from sklearn.svm import LinearSVC

from routing.classify.language import HAN_CHARACTER, LATIN_WORD, detect_language, normalize_text

FALLBACK_CATEGORY = "other"
MAX_ALTERNATIVES = 3
RANDOM_STATE = 0

# Regularisation strength, chosen by cross-validation on the train split only (the test split
# is never looked at while tuning).
_C = 0.5
_CALIBRATION_FOLDS = 5


@dataclass(frozen=True)
class Classification:
    category: str
    confidence: float
    alternatives: tuple[tuple[str, float], ...]
    language: str


_ENGLISH_TOKEN = r"(?u)\b[a-z][a-z']+\b"
_LATIN_LETTERS = re.compile(r"[a-z]{2,}")


def _latin_words(text: str) -> str:
    """The Latin-letter words of a normalized text, for the English sub-word features. Single
    letters (B口, a 2 x 4) are left out, as the word features leave them out."""
    return " ".join(_LATIN_LETTERS.findall(text))


def _tfidf(**options: Any) -> TfidfVectorizer:
    # Texts arrive normalized (lower case already); sublinear tf keeps a word repeated in a long
    # description from outweighing the rest.
    return TfidfVectorizer(sublinear_tf=True, lowercase=False, dtype=np.float64, **options)


def _features(texts: Sequence[str]) -> FeatureUnion:
    """An unfitted feature extractor for these (normalized) training texts."""
    parts: list[tuple[str, TfidfVectorizer]] = [
        # char_wb keeps n-grams inside space-separated chunks, so a landmark typed before a
        # space does not bleed into the n-grams of the problem that follows it. Bigrams beat
        # trigrams and 4-grams in cross-validation on the train split: with a few dozen
        # examples per category, longer n-grams mostly memorise phrasings.
        ("chars", _tfidf(analyzer="char_wb", ngram_range=(1, 2))),
    ]
    # Character n-grams split English words arbitrarily; whole words and word pairs ("fire
    # lane", "street light") carry the meaning in English reports. Left out when no training
    # text has an English word, because an empty vocabulary is an error to scikit-learn.
    if any(re.search(_ENGLISH_TOKEN, text) for text in texts):
        parts.append(
            ("words", _tfidf(analyzer="word", token_pattern=_ENGLISH_TOKEN, ngram_range=(1, 2)))
        )
        # Letter 3–5-grams inside English words tie together forms that whole words keep
        # apart: light/lights/streetlight, overgrown/overgrowth, pot hole/pothole. Restricted to
        # Latin letters because on Han text such long n-grams only memorise phrasings (see
        # above). Chosen by cross-validation on the train split.
        parts.append(
            (
                "english_subwords",
                _tfidf(analyzer="char_wb", preprocessor=_latin_words, ngram_range=(3, 5)),
            )
        )
    return FeatureUnion(parts)


def _linear_model() -> LinearSVC:
    return LinearSVC(C=_C, random_state=RANDOM_STATE)


def _softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def _fit_temperature(scores: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the log loss of held-out scores (temperature scaling).

    A single scalar cannot change which category ranks first, only how sure the model claims to
    be, so it calibrates without costing accuracy, and it needs far less data than a per-class
    (Platt or isotonic) calibrator with 19 classes and a few dozen examples each."""

    def log_loss(log_t: float) -> float:
        probs = _softmax(scores / math.exp(log_t))
        return float(-np.mean(np.log(probs[np.arange(len(labels)), labels] + 1e-12)))

    # Golden-section search on log T; the log loss is unimodal in T.
    lo, hi = math.log(0.05), math.log(20.0)
    ratio = (math.sqrt(5) - 1) / 2
    a, b = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    fa, fb = log_loss(a), log_loss(b)
    for _ in range(60):
        if fa < fb:
            hi, b, fb = b, a, fa
            a = hi - ratio * (hi - lo)
            fa = log_loss(a)
        else:
            lo, a, fa = a, b, fb
            b = lo + ratio * (hi - lo)
            fb = log_loss(b)
    return math.exp((lo + hi) / 2)


def _weights(model: LinearSVC) -> tuple[np.ndarray, np.ndarray]:
    """(coefficients as features × classes, intercepts) giving one score per class."""
    coef, intercept = model.coef_, model.intercept_
    if coef.shape[0] == 1:
        # Two classes: scikit-learn keeps one score s; softmax over (-s/2, s/2) equals
        # sigmoid(s), so the rest of the code can treat every model as multi-class.
        coef, intercept = (
            np.vstack([-coef / 2, coef / 2]),
            np.hstack([-intercept / 2, intercept / 2]),
        )
    return np.ascontiguousarray(coef.T), intercept.copy()


def _held_out_scores(texts: Sequence[str], labels: np.ndarray, folds: int) -> np.ndarray:
    # Every class has at least ``folds`` examples, so every training fold sees every class.
    scores = np.zeros((len(texts), int(labels.max()) + 1))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=RANDOM_STATE)
    for fit_idx, held_idx in splitter.split(np.zeros(len(labels)), labels):
        fit_texts = [texts[i] for i in fit_idx]
        features = _features(fit_texts)
        model = _linear_model()
        model.fit(features.fit_transform(fit_texts), labels[fit_idx])
        coef_t, intercept = _weights(model)
        scores[held_idx] = features.transform([texts[i] for i in held_idx]) @ coef_t + intercept
    return scores


class _Vocabulary:
    """One fitted TfidfVectorizer reduced to what turns a text into its slice of the feature
    row. ``transform`` spends about half a millisecond per call validating and building sparse
    matrices, far more than the arithmetic for a twenty-character report."""

    __slots__ = ("_analyze", "_idf", "_index", "_offset", "blank_columns")

    def __init__(self, vectorizer: TfidfVectorizer, offset: int) -> None:
        self._analyze = vectorizer.build_analyzer()
        self._index: dict[str, int] = dict(vectorizer.vocabulary_)
        self._idf: np.ndarray = vectorizer.idf_.copy()
        self._offset = offset
        # char_wb pads every chunk with spaces, so the lone space is a feature of every text;
        # it counts chunks and says nothing about the problem.
        self.blank_columns = frozenset(
            column + offset for gram, column in self._index.items() if not gram.strip()
        )

    @property
    def size(self) -> int:
        return len(self._idf)

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(feature indices, tf-idf weights) exactly as the vectorizer's ``transform`` gives
        them: sublinear term frequency times idf, L2-normalised within this vectorizer."""
        counts: Counter[int] = Counter()
        for gram in self._analyze(text):
            column = self._index.get(gram)
            if column is not None:
                counts[column] += 1
        if not counts:
            return _NO_INDICES, _NO_WEIGHTS
        columns = np.fromiter(counts.keys(), dtype=np.intp, count=len(counts))
        tf = np.fromiter(counts.values(), dtype=np.float64, count=len(counts))
        weights = (np.log(tf) + 1.0) * self._idf[columns]
        weights /= np.linalg.norm(weights)
        return columns + self._offset, weights


_NO_INDICES = np.zeros(0, dtype=np.intp)
_NO_WEIGHTS = np.zeros(0, dtype=np.float64)


class TextClassifier:
    def __init__(
        self,
        features: FeatureUnion,
        model: LinearSVC,
        categories: Sequence[str],
        temperature: float,
        priors: Sequence[float],
        model_id: str | None = None,
    ) -> None:
        self._categories = tuple(categories)
        self._temperature = temperature
        self._priors = np.asarray(priors, dtype=np.float64)
        self._model_id = model_id
        self._coef_t, self._intercept = _weights(model)
        vocabularies: list[_Vocabulary] = []
        offset = 0
        for _, vectorizer in features.transformer_list:
            vocabularies.append(_Vocabulary(vectorizer, offset))
            offset += vocabularies[-1].size
        self._vocabularies = tuple(vocabularies)
        self._blank_columns = frozenset().union(*(v.blank_columns for v in vocabularies))

    @classmethod
    def train(
        cls, examples: Iterable[tuple[str, str]], *, model_id: str | None = None
    ) -> TextClassifier:
        """Fit on (text, category) pairs. ``model_id`` names what it was trained from (see
        ``artifact.model_id``); None for a model trained on anything but the bundled corpus."""
        texts: list[str] = []
        categories: list[str] = []
        for text, category in examples:
            normalized = normalize_text(text)
            if normalized:
                texts.append(normalized)
                categories.append(category)
        names = sorted(set(categories))
        if len(names) < 2:
            raise ValueError("Training needs examples of at least two categories.")
        index = {name: i for i, name in enumerate(names)}
        labels = np.array([index[c] for c in categories])

        features = _features(texts)
        model = _linear_model()
        model.fit(features.fit_transform(texts), labels)

        folds = min(_CALIBRATION_FOLDS, int(np.bincount(labels).min()))
        temperature = (
            _fit_temperature(_held_out_scores(texts, labels, folds), labels) if folds >= 2 else 1.0
        )
        priors = np.bincount(labels) / len(labels)
        return cls(features, model, names, temperature, priors, model_id)

    @property
    def categories(self) -> tuple[str, ...]:
        return self._categories

    @property
    def temperature(self) -> float:
        """The softmax temperature fitted on held-out folds of the training examples."""
        return self._temperature

    @property
    def model_id(self) -> str | None:
        """The id of the corpus, code and libraries this model was trained under; cases record
        it so a classification can be traced to the model that made it."""
        return self._model_id

    def _rows(self, text: str) -> list[tuple[np.ndarray, np.ndarray]]:
        return [vocabulary.row(text) for vocabulary in self._vocabularies]

    def _score(self, rows: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        columns = np.concatenate([c for c, _ in rows])
        weights = np.concatenate([w for _, w in rows])
        return weights @ self._coef_t[columns] + self._intercept

    def scores(self, text: str) -> np.ndarray:
        """Raw per-category scores (in ``categories`` order) of already normalized text, as
        the linear model computes them."""
        return self._score(self._rows(text))

    def _has_evidence(self, text: str, rows: list[tuple[np.ndarray, np.ndarray]]) -> bool:
        """False when the text's known features say nothing: only padding is in the vocabulary
        (an emoji never seen in training), or it is Latin-script text in which nothing English
        is known ("zzzz qqqq"), whose single letters and letter pairs are noise that lets a
        class with many English examples look confident."""
        latin_only = not HAN_CHARACTER.search(text) and LATIN_WORD.search(text) is not None
        if latin_only and len(rows) > 1 and not any(len(c) for c, _ in rows[1:]):
            return False
        return any(int(column) not in self._blank_columns for c, _ in rows for column in c)

    def probabilities(self, text: str) -> dict[str, float]:
        """Calibrated probability of every category; empty for text with nothing to classify.
        Text without evidence gets the share of each category in the training data, which
        stays far below any sensible triage threshold."""
        normalized = normalize_text(text)
        if not normalized:
            return {}
        rows = self._rows(normalized)
        if self._has_evidence(normalized, rows):
            probs = _softmax(self._score(rows)[np.newaxis, :] / self._temperature)[0]
        else:
            probs = self._priors
        return {name: float(p) for name, p in zip(self._categories, probs, strict=True)}

    def classify(self, text: str) -> Classification:
        language = detect_language(text)
        probs = self.probabilities(text)
        if not probs:
            return Classification(FALLBACK_CATEGORY, 0.0, (), language)
        # Ties broken by code so equal probabilities always rank the same way.
        ranked = sorted(probs.items(), key=lambda item: (-item[1], item[0]))
        (top, confidence), rest = ranked[0], ranked[1 : 1 + MAX_ALTERNATIVES]
        return Classification(top, confidence, tuple(rest), language)
