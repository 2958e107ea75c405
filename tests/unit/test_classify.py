"""The text classifier and its bundled corpus: held-out quality, script folding, typos, emoji,
empty text, language detection and the shape of what classify() returns."""

from __future__ import annotations

import csv
import dataclasses
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from routing import classify
from routing.classify import (
    Classification,
    TextClassifier,
    default_classifier,
    detect_language,
    load_corpus,
    normalize_text,
)
from routing.classify import model as classify_model

TAXONOMY = Path(__file__).resolve().parents[2] / "models" / "seed" / "taxonomy.csv"
CORPUS = Path(classify.__file__).resolve().parents[1] / "data" / "corpus.csv"


@pytest.fixture(scope="module")
def classifier() -> TextClassifier:
    return default_classifier()


def taxonomy_codes() -> list[str]:
    with TAXONOMY.open(encoding="utf-8") as f:
        return [row["code"] for row in csv.DictReader(f)]


def corpus_rows() -> list[dict[str, str]]:
    with CORPUS.open(encoding="utf-8") as f:
        return list(csv.DictReader(f))


# --- the corpus -------------------------------------------------------------------------------


def test_corpus_covers_every_taxonomy_code_in_both_splits() -> None:
    rows = corpus_rows()
    counts = Counter((row["category"], row["split"]) for row in rows)
    assert {row["category"] for row in rows} == set(taxonomy_codes())
    for code in taxonomy_codes():
        assert counts[(code, "train")] >= 40, code
        assert counts[(code, "test")] >= 12, code


def test_long_descriptions_cover_every_code_in_both_splits() -> None:
    rows = [row for row in corpus_rows() if row["style"] == "long"]
    counts = Counter((row["category"], row["split"]) for row in rows)
    for code in taxonomy_codes():
        assert counts[(code, "train")] >= 10, code
        assert counts[(code, "test")] >= 3, code
    assert {row["lang"] for row in rows} >= {"zh-Hans", "zh-Hant", "en"}


def test_corpus_rows_are_well_formed() -> None:
    rows = corpus_rows()
    assert list(rows[0]) == ["text", "category", "lang", "split", "style"]
    for row in rows:
        assert row["lang"] in classify.LANGUAGES, row
        assert row["split"] in classify.SPLITS, row
        assert row["style"] in classify.STYLES, row
        if row["style"] == "short":
            assert 5 <= len(row["text"]) <= 60, row
        else:
            assert 61 <= len(row["text"]) <= 400, row
    languages = Counter(row["lang"] for row in rows)
    assert languages.most_common(1)[0][0] == "zh-Hans"
    assert all(languages[lang] > 0 for lang in classify.LANGUAGES)


def test_no_text_is_in_both_splits() -> None:
    train = {normalize_text(text) for text, _ in load_corpus("train")}
    test = {normalize_text(text) for text, _ in load_corpus("test")}
    assert not train & test
    assert len(load_corpus()) == len(load_corpus("train")) + len(load_corpus("test"))


def test_load_corpus_rejects_an_unknown_split_or_style() -> None:
    with pytest.raises(ValueError):
        load_corpus("validation")
    with pytest.raises(ValueError):
        load_corpus("test", "medium")


def test_load_corpus_by_style() -> None:
    short, long = load_corpus(style="short"), load_corpus(style="long")
    assert short and long
    assert len(short) + len(long) == len(load_corpus())
    assert max(len(text) for text, _ in short) <= 60 < min(len(text) for text, _ in long)


def test_corpus_language_labels_match_detection() -> None:
    # Pinyin spelled out inside Chinese ("路deng不亮") is the one known kind of disagreement.
    rows = corpus_rows()
    agree = sum(detect_language(row["text"]) == row["lang"] for row in rows)
    assert agree / len(rows) >= 0.99


# --- quality on the held-out split --------------------------------------------------------------


def test_held_out_accuracy(classifier: TextClassifier) -> None:
    test = load_corpus("test", "short")
    truth = [category for _, category in test]
    predicted = [classifier.classify(text).category for text, _ in test]
    accuracy = sum(t == p for t, p in zip(truth, predicted, strict=True)) / len(test)
    macro_f1 = f1_score(truth, predicted, average="macro")
    print(f"held-out accuracy {accuracy:.3f}, macro-F1 {macro_f1:.3f} on {len(test)} reports")
    assert accuracy >= 0.85, f"held-out accuracy {accuracy:.3f}"
    assert macro_f1 >= 0.8, f"held-out macro-F1 {macro_f1:.3f}"


def test_long_descriptions_are_classified_too(classifier: TextClassifier) -> None:
    # Residents' longer descriptions carry more distractions (addresses, history, a second
    # problem); they are not the target population, but must not fall apart.
    test = load_corpus("test", "long")
    accuracy = sum(classifier.classify(text).category == c for text, c in test) / len(test)
    print(f"held-out long accuracy {accuracy:.3f} on {len(test)} reports")
    assert accuracy >= 0.75, f"held-out long accuracy {accuracy:.3f}"


def test_held_out_accuracy_holds_for_every_language(classifier: TextClassifier) -> None:
    by_language: dict[str, list[bool]] = {}
    for row in corpus_rows():
        if row["split"] == "test":
            hit = classifier.classify(row["text"]).category == row["category"]
            by_language.setdefault(row["lang"], []).append(hit)
    for language, hits in by_language.items():
        accuracy = sum(hits) / len(hits)
        print(f"{language}: {accuracy:.3f} on {len(hits)}")
        assert accuracy >= 0.75, f"{language}: {accuracy:.3f}"


def test_confidence_is_calibrated_on_the_held_out_split(classifier: TextClassifier) -> None:
    # Calibrated: on average the model is about as sure as it is right, so the triage threshold
    # means what it says.
    results = [(classifier.classify(text), category) for text, category in load_corpus("test")]
    mean_confidence = float(np.mean([r.confidence for r, _ in results]))
    accuracy = float(np.mean([r.category == c for r, c in results]))
    print(f"mean confidence {mean_confidence:.3f}, accuracy {accuracy:.3f}")
    assert abs(mean_confidence - accuracy) <= 0.08
    confident = [r.category == c for r, c in results if r.confidence >= 0.9]
    assert confident and np.mean(confident) >= 0.9


def test_fast_scoring_matches_scikit_learn() -> None:
    # classify() scores with the fitted vocabularies and weights directly instead of calling
    # transform(); this guards that shortcut against drifting from what scikit-learn computes.
    train = load_corpus("train")
    texts = [normalize_text(text) for text, _ in train]
    names = sorted({category for _, category in train})
    labels = np.array([names.index(category) for _, category in train])
    features = classify_model._features(texts)
    model = classify_model._linear_model().fit(features.fit_transform(texts), labels)
    # Every seventh test report: both scripts, English and mixed, short notes and long ones.
    probe = [normalize_text(text) for text, _ in load_corpus("test")[::7]]
    expected = model.decision_function(features.transform(probe))
    ours = TextClassifier.train(train)
    got = np.array([ours.scores(text) for text in probe])
    np.testing.assert_allclose(got, expected, atol=1e-9)


# --- what riders actually type ------------------------------------------------------------------

SAME_REPORT_IN_BOTH_SCRIPTS = [
    ("井盖裂开了 电动车过不去", "井蓋裂開了 電動車過不去", "manhole_cover"),
    ("这条街的路灯晚上全都不亮", "這條街的路燈晚上全都不亮", "street_light"),
    ("红绿灯坏了 路口很乱", "紅綠燈壞了 路口很亂", "traffic_facility"),
    ("消防通道被汽车堵住了", "消防通道被汽車堵住了", "blocked_passage"),
    ("保安不让外卖员进小区", "保安不讓外賣員進小區", "access_restriction"),
    ("换电柜坏了 电池换不了", "換電櫃壞了 電池換不了", "rider_need"),
    ("台风把行道树刮倒了", "颱風把行道樹颳倒了", "street_tree"),
    ("垃圾桶满了 垃圾掉了一地", "垃圾桶滿了 垃圾掉了一地", "bin_overflow"),
]


@pytest.mark.parametrize(("simplified", "traditional", "expected"), SAME_REPORT_IN_BOTH_SCRIPTS)
def test_traditional_and_simplified_get_the_same_category(
    classifier: TextClassifier, simplified: str, traditional: str, expected: str
) -> None:
    assert detect_language(simplified) == "zh-Hans"
    assert detect_language(traditional) == "zh-Hant"
    simple, trad = classifier.classify(simplified), classifier.classify(traditional)
    assert simple.category == trad.category == expected
    assert simple.confidence == pytest.approx(trad.confidence, abs=0.05)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("井概没了 路上一个大洞", "manhole_cover"),
        ("路等不亮 巷子里全黑", "street_light"),
        ("红路灯不亮了 路口车乱开", "traffic_facility"),
        ("消防通到被车堵了", "blocked_passage"),
        ("垃圾痛满了 好臭", "bin_overflow"),
        ("小广高贴得到处都是", "illegal_ads"),
    ],
)
def test_pinyin_input_typos(classifier: TextClassifier, text: str, expected: str) -> None:
    assert classifier.classify(text).category == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("🕳️🕳️ 井盖没了 ⚠️", "manhole_cover"),
        ("路灯不亮💡❌😡", "street_light"),
        ("🌧️🌧️ 路口积水太深了", "waterlogging"),
        ("🗑️ 垃圾桶满了 🤮", "bin_overflow"),
        ("🚒🚒 消防通道堵死了", "blocked_passage"),
    ],
)
def test_emoji_do_not_get_in_the_way(classifier: TextClassifier, text: str, expected: str) -> None:
    assert classifier.classify(text).category == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("美团驿站门口 井盖没了", "manhole_cover"),
        ("美团驿站门口 路灯不亮", "street_light"),
        ("美团驿站门口 垃圾桶满了", "bin_overflow"),
        ("美团驿站门口 有人摆摊卖水果 堵路", "street_vending"),
        ("near Gate 3 of 春江小区 the street light is out", "street_light"),
        ("near Gate 3 of 春江小区 fire lane blocked by cars", "blocked_passage"),
    ],
)
def test_landmarks_do_not_decide_the_category(
    classifier: TextClassifier, text: str, expected: str
) -> None:
    assert classifier.classify(text).category == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("manhole cover missing on the corner", "manhole_cover"),
        ("traffic lights not working at the junction", "traffic_facility"),
        ("guard won't let delivery riders into the estate", "access_restriction"),
        ("那个 street light 坏了 很黑", "street_light"),
        ("路口 flooded 了 过不去", "waterlogging"),
    ],
)
def test_english_and_mixed_reports(classifier: TextClassifier, text: str, expected: str) -> None:
    assert classifier.classify(text).category == expected


def test_two_problems_the_main_one_wins(classifier: TextClassifier) -> None:
    result = classifier.classify("垃圾桶也有点满 但主要是井盖没了 有个大洞很危险")
    assert result.category == "manhole_cover"


@pytest.mark.parametrize("text", ["", "   ", "\n\t ", "\u3000"])
def test_empty_text_is_other_with_no_confidence(classifier: TextClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.category == "other"
    assert result.confidence == 0.0
    assert result.alternatives == ()
    assert result.language in classify.LANGUAGES


@pytest.mark.parametrize("text", ["🙂", "???", "12345", "zzzz qqqq", "ｘ"])
def test_text_without_known_words_still_classifies(classifier: TextClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert result.category in classifier.categories
    assert 0.0 <= result.confidence <= 1.0
    # Nothing recognisable should not look confident enough to skip triage.
    assert result.confidence < 0.45


# --- language detection and normalisation -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("井盖没了 好大一个洞", "zh-Hans"),
        ("井蓋不見了 路中間一個大洞", "zh-Hant"),
        ("渠蓋唔見咗 好危險", "zh-Hant"),
        ("street light out on Binjiang Ave", "en"),
        ("the drain cover is broken!!", "en"),
        ("那个 manhole cover 不见了", "mixed"),
        ("near Gate 3 of 春江小区 manhole cover missing", "mixed"),
        ("KFC门口垃圾桶满了", "zh-Hans"),
        ("楼下KTV天天唱到两点", "zh-Hans"),
        ("美团app定位不准 老是偏到对面", "zh-Hans"),
        ("B口旁边路灯不亮", "zh-Hans"),
        ("ＭＡＮＨＯＬＥ ＣＯＶＥＲ ｍｉｓｓｉｎｇ", "en"),
        ("", "zh-Hans"),
        ("🕳️⚠️ 123", "zh-Hans"),
    ],
)
def test_detect_language(text: str, expected: str) -> None:
    assert detect_language(text) == expected


def test_normalize_text() -> None:
    assert normalize_text("路燈  壞了\n\t不亮") == "路灯 坏了 不亮"
    assert normalize_text("  Street LIGHT Out  ") == "street light out"
    assert normalize_text("ＡＢＣ１２３，井蓋") == "abc123,井盖"
    assert normalize_text("\u3000\u3000") == ""
    assert normalize_text("井蓋") == normalize_text("井盖")


# --- the shape of a result ----------------------------------------------------------------------

SAMPLES = [text for text, _ in load_corpus("test")[::7]] + ["路灯坏了 井盖也没了", "ok"]


@pytest.mark.parametrize("text", SAMPLES)
def test_result_shape(classifier: TextClassifier, text: str) -> None:
    result = classifier.classify(text)
    assert isinstance(result, Classification)
    assert result.category in classifier.categories
    assert 0.0 <= result.confidence <= 1.0
    codes = [code for code, _ in result.alternatives]
    probs = [p for _, p in result.alternatives]
    assert len(result.alternatives) == 3
    assert result.category not in codes and len(set(codes)) == len(codes)
    assert set(codes) <= set(classifier.categories)
    assert probs == sorted(probs, reverse=True)
    assert all(0.0 <= p <= result.confidence for p in probs)
    assert result.confidence + sum(probs) <= 1.0 + 1e-9
    assert result.language in classify.LANGUAGES


def test_probabilities_cover_every_category_and_sum_to_one(classifier: TextClassifier) -> None:
    probs = classifier.probabilities("人行道上停满了车")
    assert set(probs) == set(classifier.categories) == set(taxonomy_codes())
    assert sum(probs.values()) == pytest.approx(1.0)
    result = classifier.classify("人行道上停满了车")
    assert result.confidence == max(probs.values())


def test_classification_is_frozen(classifier: TextClassifier) -> None:
    result = classifier.classify("路灯不亮")
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.category = "other"  # type: ignore[misc]


# --- determinism and training ---------------------------------------------------------------


def test_training_is_deterministic(classifier: TextClassifier) -> None:
    again = TextClassifier.train(load_corpus("train"))
    assert again.categories == classifier.categories
    assert again.temperature == classifier.temperature
    for text in SAMPLES:
        assert again.classify(text) == classifier.classify(text)
        assert classifier.classify(text) == classifier.classify(text)


def test_default_classifier_is_cached() -> None:
    assert default_classifier() is default_classifier()


def test_train_rejects_fewer_than_two_categories() -> None:
    with pytest.raises(ValueError):
        TextClassifier.train([])
    with pytest.raises(ValueError):
        TextClassifier.train([("路灯不亮", "street_light"), ("路灯坏了", "street_light")])


def test_train_on_a_small_set_of_examples() -> None:
    # Too few examples per category to hold any out for calibration: it must still work.
    small = TextClassifier.train(
        [("路灯不亮", "street_light"), ("井盖没了", "manhole_cover"), ("  ", "other")]
    )
    assert small.categories == ("manhole_cover", "street_light")
    assert small.classify("井盖丢了").category == "manhole_cover"
    assert small.classify("路灯坏了").category == "street_light"


# --- corpus honesty and US-style English -------------------------------------------------------


def _bigrams(text: str) -> set[str]:
    text = normalize_text(text).replace(" ", "")
    return {text[i : i + 2] for i in range(len(text) - 1)}


def test_held_out_split_has_no_near_duplicates_of_train() -> None:
    # Character-bigram Jaccard similarity: a test report reworded from a train report would
    # score high and flatter the held-out figures.
    train = [_bigrams(text) for text, _ in load_corpus("train")]
    for text, _ in load_corpus("test"):
        grams = _bigrams(text)
        closest = max(len(grams & other) / len(grams | other) for other in train)
        assert closest < 0.6, text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("there is a deep pothole in front of the post office", "road_damage"),
        ("stop sign was knocked over by a truck", "traffic_facility"),
        ("graffiti all over the wall behind the pharmacy", "illegal_ads"),
        ("our garbage was skipped on collection day", "exposed_garbage"),
        (
            "There is a large limb hanging off the oak tree in front of 42 Pine St, it cracked in "
            "the storm last night and could fall on a car",
            "street_tree",
        ),
        (
            "The streetlight on the pole outside number 17 has been cycling on and off every few "
            "minutes for about a week now, really distracting at night",
            "street_light",
        ),
        (
            "Someone dumped an old mattress, two tires and a broken dresser at the end of the "
            "cul-de-sac over the weekend, still there Monday",
            "exposed_garbage",
        ),
        (
            "Water has been pooling across both lanes at the bottom of Ridge Rd every time it "
            "rains, the catch basin looks completely clogged with leaves",
            "waterlogging",
        ),
    ],
)
def test_us_style_english_reports(classifier: TextClassifier, text: str, expected: str) -> None:
    assert classifier.classify(text).category == expected
