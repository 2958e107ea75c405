"""The classifier as a versioned file: the model id, saving and loading, and the failures an
operator must see (missing, damaged, stale) instead of a silently different model."""

from __future__ import annotations

import multiprocessing
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import joblib
import pytest

from routing.classify import artifact, load_corpus
from routing.classify.model import TextClassifier

TINY_CORPUS = [
    ("路灯不亮", "street_light"),
    ("路灯坏了 巷子里很黑", "street_light"),
    ("street light out on the corner", "street_light"),
    ("井盖没了", "manhole_cover"),
    ("井盖坏了 有个大洞", "manhole_cover"),
    ("manhole cover missing", "manhole_cover"),
]
PROBES = ["路灯坏了", "井盖丢了", "manhole cover gone", "🙂", "", "那个 street light 不亮"]

SOURCES = {"language.py": b"def detect(): ...", "model.py": b"class Model: ..."}
LIBRARIES = {"scikit-learn": "1.9.1", "numpy": "2.4.6", "joblib": "1.6.0"}


def tiny_classifier(model_id: str | None) -> TextClassifier:
    return TextClassifier.train(TINY_CORPUS, model_id=model_id)


def assert_hint(error: pytest.ExceptionInfo[artifact.ModelArtifactError]) -> None:
    assert "cityrelay train-classifier" in str(error.value)


# --- the model id -------------------------------------------------------------------------------


def test_model_id_is_a_short_hex_string_and_stable() -> None:
    first = artifact.compute_model_id(b"text,category\n", SOURCES, LIBRARIES)
    again = artifact.compute_model_id(b"text,category\n", dict(SOURCES), dict(LIBRARIES))
    assert first == again
    assert len(first) == 16
    int(first, 16)


def test_model_id_does_not_depend_on_the_order_inputs_are_listed_in() -> None:
    reversed_sources = dict(reversed(list(SOURCES.items())))
    reversed_libraries = dict(reversed(list(LIBRARIES.items())))
    assert artifact.compute_model_id(b"x", SOURCES, LIBRARIES) == artifact.compute_model_id(
        b"x", reversed_sources, reversed_libraries
    )


@pytest.mark.parametrize(
    "change",
    [
        lambda corpus, sources, libraries: (corpus + b"one more row\n", sources, libraries),
        lambda corpus, sources, libraries: (
            corpus,
            {**sources, "model.py": sources["model.py"] + b"\n_C = 0.25\n"},
            libraries,
        ),
        lambda corpus, sources, libraries: (
            corpus,
            {**sources, "corpus.py": b"SPLITS = ()"},
            libraries,
        ),
        lambda corpus, sources, libraries: (
            corpus,
            sources,
            {**libraries, "scikit-learn": "1.9.2"},
        ),
        # Bytes moved from one input to the next must not give the same id.
        lambda corpus, sources, libraries: (
            corpus[:-1],
            {**sources, "language.py": corpus[-1:] + sources["language.py"]},
            libraries,
        ),
    ],
    ids=["corpus", "model code", "new module", "library version", "shifted bytes"],
)
def test_model_id_changes_with_any_input(change: Callable[..., tuple]) -> None:
    corpus = b"text,category,lang,split,style\n"
    before = artifact.compute_model_id(corpus, SOURCES, LIBRARIES)
    assert artifact.compute_model_id(*change(corpus, SOURCES, LIBRARIES)) != before


def test_model_id_covers_the_bundled_corpus_the_model_code_and_the_libraries() -> None:
    sources = artifact.model_sources()
    assert set(sources) == {"language.py", "corpus.py", "model.py"}
    assert b"class TextClassifier" in sources["model.py"]
    assert set(artifact.library_versions()) == {
        "scikit-learn",
        "numpy",
        "scipy",
        "opencc",
        "joblib",
    }
    from routing.classify.corpus import corpus_bytes

    assert artifact.model_id() == artifact.compute_model_id(
        corpus_bytes(), sources, artifact.library_versions()
    )
    assert artifact.model_id() == artifact.model_id()


def test_a_model_trained_from_the_bundled_corpus_carries_the_current_id() -> None:
    assert artifact.default_classifier().model_id == artifact.model_id()
    assert tiny_classifier(None).model_id is None


# --- saving and loading -------------------------------------------------------------------------


def test_round_trip_gives_identical_probabilities(tmp_path: Path) -> None:
    classifier = artifact.default_classifier()
    path = artifact.save(classifier, tmp_path / "models" / "classifier.joblib")
    loaded = artifact.load(path)
    assert loaded.model_id == classifier.model_id == artifact.model_id()
    assert loaded.categories == classifier.categories
    texts = [text for text, _ in load_corpus("test")[::11]] + PROBES
    for text in texts:
        assert loaded.probabilities(text) == classifier.probabilities(text)
        assert loaded.classify(text) == classifier.classify(text)


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "classifier.joblib"
    artifact.save(tiny_classifier("a" * 16), path)
    artifact.save(tiny_classifier("b" * 16), path)
    assert [p.name for p in tmp_path.iterdir()] == ["classifier.joblib"]
    assert joblib.load(path)["model_id"] == "b" * 16
    assert path.stat().st_mode & 0o044 == 0o044  # readable by workers running as another user


def test_save_refuses_a_model_without_an_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        artifact.save(tiny_classifier(None), tmp_path / "classifier.joblib")
    assert not list(tmp_path.iterdir())


def test_a_missing_file_is_an_error_naming_the_command(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "classifier.joblib"
    with pytest.raises(artifact.ModelFileMissingError) as error:
        artifact.load(path)
    assert isinstance(error.value, artifact.ModelArtifactError)
    assert str(path) in str(error.value)
    assert_hint(error)


@pytest.mark.parametrize(
    "damage",
    [
        lambda good: random.Random(0).randbytes(4096),
        lambda good: good[: len(good) // 2],
        lambda good: b"",
    ],
    ids=["random bytes", "truncated", "empty"],
)
def test_a_damaged_file_is_an_error_naming_the_command(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    path = artifact.save(tiny_classifier(artifact.model_id()), tmp_path / "classifier.joblib")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(artifact.ModelArtifactError) as error:
        artifact.load(path)
    assert not isinstance(error.value, artifact.ModelFileMissingError)
    assert "cannot be read" in str(error.value)
    assert_hint(error)


def test_a_model_of_another_id_is_an_error_naming_both_ids(tmp_path: Path) -> None:
    stale = "0123456789abcdef"
    path = artifact.save(tiny_classifier(stale), tmp_path / "classifier.joblib")
    with pytest.raises(artifact.ModelArtifactError) as error:
        artifact.load(path)
    assert stale in str(error.value) and artifact.model_id() in str(error.value)
    assert_hint(error)


@pytest.mark.parametrize(
    "payload",
    [
        ["not", "a", "dict"],
        {"format": 999, "model_id": "x", "classifier": None},
        {"format": artifact.FORMAT, "model_id": None, "classifier": "text"},
    ],
    ids=["list", "future format", "no classifier"],
)
def test_a_file_that_is_not_a_model_is_an_error(tmp_path: Path, payload: object) -> None:
    path = tmp_path / "classifier.joblib"
    joblib.dump(payload, path)
    with pytest.raises(artifact.ModelArtifactError) as error:
        artifact.load(path)
    assert_hint(error)


def test_a_file_whose_classifier_disagrees_with_its_header_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "classifier.joblib"
    joblib.dump(
        {
            "format": artifact.FORMAT,
            "model_id": artifact.model_id(),
            "classifier": tiny_classifier("0123456789abcdef"),
        },
        path,
    )
    with pytest.raises(artifact.ModelArtifactError) as error:
        artifact.load(path)
    assert_hint(error)


# --- load or train ------------------------------------------------------------------------------


@pytest.fixture
def counted_training(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Make load_or_train train the tiny corpus (fast) and log each training to a file, which
    also counts trainings done in forked child processes."""
    log = tmp_path / "trainings.log"
    log.touch()

    def train() -> TextClassifier:
        with log.open("a") as f:
            f.write("trained\n")
        time.sleep(0.3)  # long enough for a second process to arrive while this one trains
        return tiny_classifier(artifact.model_id())

    monkeypatch.setattr(artifact, "train_from_bundled_corpus", train)
    return log


def trainings(log: Path) -> int:
    return len(log.read_text().splitlines())


def test_load_or_train_trains_once_then_loads(tmp_path: Path, counted_training: Path) -> None:
    path = tmp_path / "instance" / "classifier.joblib"
    first = artifact.load_or_train(path)
    assert path.is_file()
    assert trainings(counted_training) == 1
    second = artifact.load_or_train(path)
    assert trainings(counted_training) == 1
    assert second is not first
    assert second.model_id == first.model_id == artifact.model_id()
    for text in PROBES:
        assert second.probabilities(text) == first.probabilities(text)


def _load_or_train_in_child(path: str) -> None:
    artifact.load_or_train(path)


def test_processes_starting_together_train_once(tmp_path: Path, counted_training: Path) -> None:
    path = tmp_path / "classifier.joblib"
    # Forked children inherit the patched trainer.
    context = multiprocessing.get_context("fork")
    children = [context.Process(target=_load_or_train_in_child, args=(str(path),)) for _ in "abc"]
    for child in children:
        child.start()
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert trainings(counted_training) == 1
    assert artifact.load(path).model_id == artifact.model_id()


@pytest.mark.parametrize(
    "content",
    [random.Random(1).randbytes(512), b"not a model"],
    ids=["random bytes", "text"],
)
def test_load_or_train_never_overwrites_a_damaged_file(
    tmp_path: Path, counted_training: Path, content: bytes
) -> None:
    path = tmp_path / "classifier.joblib"
    path.write_bytes(content)
    with pytest.raises(artifact.ModelArtifactError) as error:
        artifact.load_or_train(path)
    assert_hint(error)
    assert path.read_bytes() == content
    assert trainings(counted_training) == 0


def test_load_or_train_never_overwrites_a_stale_model(
    tmp_path: Path, counted_training: Path
) -> None:
    path = artifact.save(tiny_classifier("0123456789abcdef"), tmp_path / "classifier.joblib")
    content = path.read_bytes()
    with pytest.raises(artifact.ModelArtifactError) as error:
        artifact.load_or_train(path)
    assert_hint(error)
    assert path.read_bytes() == content
    assert trainings(counted_training) == 0


# --- purity -------------------------------------------------------------------------------------


def test_the_classifier_needs_no_web_queue_or_database_code() -> None:
    probe = (
        "import sys, routing.classify; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'flask', 'celery', 'sqlalchemy', 'intake', 'workers', 'models', 'services'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
