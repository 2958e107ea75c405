"""Pure classifier metrics over (gold, predicted, confidence) triples."""

from __future__ import annotations

import pytest

from evaluation import evaluate

TRIPLES = [
    ("a", "a", 0.9),
    ("a", "a", 0.8),
    ("a", "b", 0.3),
    ("b", "b", 0.7),
    ("b", "a", 0.6),
    ("c", "c", 0.2),
]


def test_accuracy() -> None:
    assert evaluate.accuracy(TRIPLES) == pytest.approx(4 / 6)
    assert evaluate.accuracy([]) == 0.0


def test_per_label_precision_recall_and_macro_f1() -> None:
    figures = {f.label: f for f in evaluate.per_label(TRIPLES)}
    assert set(figures) == {"a", "b", "c"}
    a, b, c = figures["a"], figures["b"], figures["c"]
    assert (a.precision, a.recall, a.support, a.predicted) == (pytest.approx(2 / 3), 2 / 3, 3, 3)
    assert (b.precision, b.recall, b.support) == (0.5, 0.5, 2)
    assert (c.precision, c.recall, c.f1) == (1.0, 1.0, 1.0)
    assert evaluate.macro_f1(TRIPLES) == pytest.approx((2 / 3 + 0.5 + 1.0) / 3)


def test_labels_only_predicted_do_not_count_in_macro_f1() -> None:
    triples = [("x", "x", 1.0), ("x", "(none)", 1.0)]
    assert [f.label for f in evaluate.per_label(triples)] == ["x"]
    assert evaluate.macro_f1(triples) == pytest.approx(2 / 3)


def test_confusion_pairs_are_ranked_and_stable() -> None:
    triples = [("a", "b", 1.0)] * 3 + [("b", "a", 1.0)] * 3 + [("c", "a", 1.0)]
    assert evaluate.confusion_pairs(triples) == (("a", "b", 3), ("b", "a", 3), ("c", "a", 1))
    assert evaluate.confusion_pairs(triples, top=1) == (("a", "b", 3),)
    assert evaluate.confusion_pairs([("a", "a", 1.0)]) == ()


def test_triage() -> None:
    t = evaluate.triage(TRIPLES, threshold=0.5)
    # Below 0.5: ("a","b",0.3) wrong and ("c","c",0.2) right.
    assert (t.total, t.triaged) == (6, 2)
    assert t.share == pytest.approx(2 / 6)
    assert t.precision == pytest.approx(0.5)
    assert t.recall == pytest.approx(0.5)  # one of the two mistakes is caught
    assert t.auto_accuracy == pytest.approx(3 / 4)


def test_triage_edges() -> None:
    none = evaluate.triage(TRIPLES, threshold=0.0)
    assert (none.triaged, none.share, none.precision) == (0, 0.0, 0.0)
    assert none.auto_accuracy == pytest.approx(4 / 6)
    everything = evaluate.triage(TRIPLES, threshold=1.01)
    assert everything.share == 1.0 and everything.auto_accuracy == 0.0
    # Exactly at the threshold is routed automatically, as in the pipeline.
    assert evaluate.triage([("a", "a", 0.45)], threshold=0.45).triaged == 0


def test_report_bundles_everything() -> None:
    report = evaluate.report(iter(TRIPLES), threshold=0.5, top_confusions=1)
    assert report.total == 6
    assert report.accuracy == pytest.approx(4 / 6)
    assert len(report.confusions) == 1
    assert report.triage.threshold == 0.5
    assert len(report.per_label) == 3
