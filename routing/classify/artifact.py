"""The trained classifier as a versioned file, so workers load it instead of retraining.

A model file is only used when it was trained under the current *model id*: a hash of the
bundled corpus, the source of the modules that decide what the model computes, and the versions
of the libraries whose numerics or pickles it depends on. Anything else (missing, damaged,
stale) fails fast with a ``ModelArtifactError`` telling the operator what to run, rather than
quietly classifying with a model nobody can name.

The file is a joblib pickle: load only files this installation wrote (the same trust as the code
itself), never one received from elsewhere.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from importlib import metadata, resources
from pathlib import Path
from typing import Any

import joblib

from routing.classify.corpus import corpus_bytes, load_corpus
from routing.classify.model import TextClassifier

# Bump when the layout of the saved dict changes.
FORMAT = 1
MODEL_ID_CHARS = 16
TRAIN_COMMAND = "cityrelay train-classifier"
# The modules whose code decides what a trained model computes (text folding, corpus reading,
# features, model and calibration).
MODEL_SOURCES = ("language.py", "corpus.py", "model.py")
# Libraries whose versions can change the fitted numbers or whether the pickle loads at all.
MODEL_LIBRARIES = ("scikit-learn", "numpy", "scipy", "opencc", "joblib")


class ModelArtifactError(Exception):
    """The classifier model file cannot be used; the message says why and what to run."""


class ModelFileMissingError(ModelArtifactError):
    """No model file at the path: the one problem ``load_or_train`` repairs by training."""


def compute_model_id(
    corpus: bytes, sources: Mapping[str, bytes], libraries: Mapping[str, str]
) -> str:
    """A short hex id over exactly these inputs: the same inputs always give the same id."""
    digest = hashlib.sha256()

    def part(label: str, data: bytes) -> None:
        # Length-prefixed, so moving bytes from one part into the next changes the id.
        digest.update(f"{label}\0{len(data)}\0".encode())
        digest.update(data)

    part("corpus", corpus)
    for name in sorted(sources):
        part(f"source:{name}", sources[name])
    for name in sorted(libraries):
        part(f"library:{name}", libraries[name].encode())
    return digest.hexdigest()[:MODEL_ID_CHARS]


def model_sources() -> dict[str, bytes]:
    package = resources.files(__package__)
    return {name: package.joinpath(name).read_bytes() for name in MODEL_SOURCES}


def library_versions() -> dict[str, str]:
    return {name: metadata.version(name) for name in MODEL_LIBRARIES}


def model_id() -> str:
    """The id a model trained now from the bundled corpus gets, and the one a model file must
    carry to be loaded."""
    return compute_model_id(corpus_bytes(), model_sources(), library_versions())


def train_from_bundled_corpus() -> TextClassifier:
    """Train on the corpus' train split (the test split stays held out for evaluation)."""
    return TextClassifier.train(load_corpus("train"), model_id=model_id())


@functools.cache
def default_classifier() -> TextClassifier:
    """A model trained in this process, once. Servers load the model file instead (see
    ``load_or_train``); this is for tests and one-off scripts."""
    return train_from_bundled_corpus()


def save(classifier: TextClassifier, path: str | os.PathLike[str]) -> Path:
    """Write ``classifier`` to ``path`` atomically: readers see the old file or the new one,
    never a half-written one."""
    if classifier.model_id is None:
        raise ValueError(
            "Only a model trained under a model id can be saved (train_from_bundled_corpus)."
        )
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"format": FORMAT, "model_id": classifier.model_id, "classifier": classifier}
    # The temporary file sits in the target's folder so os.replace is a rename on one file
    # system, which is atomic.
    fd, temporary = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            joblib.dump(payload, f)
            f.flush()
            os.fsync(f.fileno())
            # mkstemp creates the file private to this user; workers may run as another one.
            os.fchmod(f.fileno(), 0o644)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return target


def load(path: str | os.PathLike[str]) -> TextClassifier:
    """The classifier saved at ``path``; ``ModelArtifactError`` unless the file is there,
    readable, and trained under the current model id."""
    source = Path(path)
    if not source.is_file():
        raise ModelFileMissingError(
            f"No classifier model file at {source}. Run `{TRAIN_COMMAND}` to train one "
            "(or set CITYRELAY_CLASSIFIER_PATH to where it is)."
        )
    try:
        payload: Any = joblib.load(source)
    except Exception as exc:
        # Unpickling damaged or foreign bytes can raise almost anything; every case means
        # the same to the operator.
        raise ModelArtifactError(
            f"The classifier model file {source} cannot be read ({type(exc).__name__}: {exc}); "
            f"it is damaged or not a CityRelay model. Run `{TRAIN_COMMAND}` to replace it."
        ) from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        found = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
        raise ModelArtifactError(
            f"The classifier model file {source} is not a CityRelay model of format {FORMAT} "
            f"(found {found!r}). Run `{TRAIN_COMMAND}` to replace it."
        )
    expected = model_id()
    if payload.get("model_id") != expected:
        raise ModelArtifactError(
            f"The classifier model file {source} was trained under model id "
            f"{payload.get('model_id')}, but this installation needs {expected} (the corpus, "
            f"the classifier code or a library version changed since). Run `{TRAIN_COMMAND}` "
            "to retrain it."
        )
    classifier = payload.get("classifier")
    if not isinstance(classifier, TextClassifier) or classifier.model_id != expected:
        raise ModelArtifactError(
            f"The classifier model file {source} does not hold a classifier trained under "
            f"model id {expected}. Run `{TRAIN_COMMAND}` to replace it."
        )
    return classifier


def load_or_train(path: str | os.PathLike[str]) -> TextClassifier:
    """Load the model file; train from the bundled corpus and save it when there is none yet.

    A damaged or stale file is an error, never silently overwritten: replacing a model is the
    operator's decision. Processes starting together train once: the first takes the lock and
    trains, the others wait for it and then load what it saved."""
    target = Path(path)
    try:
        return load(target)
    except ModelFileMissingError:
        pass
    with _exclusive_lock(target.with_name(target.name + ".lock")):
        try:
            return load(target)
        except ModelFileMissingError:
            classifier = train_from_bundled_corpus()
            save(classifier, target)
            return classifier


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    # The lock file stays: deleting it would let a process that opened the old inode and one
    # that created a new file both hold "the" lock.
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock
