"""Classifier metrics over (gold, predicted, confidence) triples. Pure: no I/O, no model.

Labels are plain strings, so the same code scores our own category codes and coarser labels
such as the Teddy Cup departments (where a prediction may be a label that never occurs in gold).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

Triple = tuple[str, str, float]


@dataclass(frozen=True)
class CategoryFigures:
    label: str
    precision: float
    recall: float
    f1: float
    support: int  # gold examples of this label
    predicted: int  # how often the model chose this label


@dataclass(frozen=True)
class TriageFigures:
    threshold: float
    total: int
    triaged: int
    # Share of reports whose confidence is below the threshold and so go to a human.
    share: float
    # Accuracy of what is routed automatically (confidence at or above the threshold).
    auto_accuracy: float
    # Precision of triage: the share of triaged reports the model would have got wrong, i.e.
    # how often sending a case to a human was warranted. 0.0 when nothing was triaged.
    precision: float
    # Share of all the model's mistakes that triage catches.
    recall: float


@dataclass(frozen=True)
class Report:
    total: int
    accuracy: float
    macro_f1: float
    per_label: tuple[CategoryFigures, ...]
    confusions: tuple[tuple[str, str, int], ...]  # (gold, predicted, count), most frequent first
    triage: TriageFigures


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else 0.0


def accuracy(triples: Sequence[Triple]) -> float:
    return _ratio(sum(gold == pred for gold, pred, _ in triples), len(triples))


def per_label(triples: Sequence[Triple]) -> tuple[CategoryFigures, ...]:
    """Precision, recall and F1 of every gold label, sorted by label. Labels that were only
    ever predicted (never gold) are left out: they have no recall, and including them would let
    a coarse mapping's spare labels drag macro-F1 down for reasons unrelated to the model."""
    gold_counts = Counter(gold for gold, _, _ in triples)
    predicted_counts = Counter(pred for _, pred, _ in triples)
    hits = Counter(gold for gold, pred, _ in triples if gold == pred)
    figures = []
    for label in sorted(gold_counts):
        precision = _ratio(hits[label], predicted_counts[label])
        recall = _ratio(hits[label], gold_counts[label])
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        figures.append(
            CategoryFigures(
                label, precision, recall, f1, gold_counts[label], predicted_counts[label]
            )
        )
    return tuple(figures)


def macro_f1(triples: Sequence[Triple]) -> float:
    figures = per_label(triples)
    return sum(f.f1 for f in figures) / len(figures) if figures else 0.0


def confusion_pairs(triples: Sequence[Triple], top: int = 10) -> tuple[tuple[str, str, int], ...]:
    """The most frequent (gold, predicted) mistakes; ties broken by label so output is stable."""
    counts = Counter((gold, pred) for gold, pred, _ in triples if gold != pred)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return tuple((gold, pred, n) for (gold, pred), n in ranked[:top])


def triage(triples: Sequence[Triple], threshold: float) -> TriageFigures:
    triaged = [(gold, pred) for gold, pred, conf in triples if conf < threshold]
    kept = [(gold, pred) for gold, pred, conf in triples if conf >= threshold]
    wrong_triaged = sum(gold != pred for gold, pred in triaged)
    wrong_total = sum(gold != pred for gold, pred, _ in triples)
    return TriageFigures(
        threshold=threshold,
        total=len(triples),
        triaged=len(triaged),
        share=_ratio(len(triaged), len(triples)),
        auto_accuracy=_ratio(sum(gold == pred for gold, pred in kept), len(kept)),
        precision=_ratio(wrong_triaged, len(triaged)),
        recall=_ratio(wrong_triaged, wrong_total),
    )


def report(triples: Iterable[Triple], threshold: float, top_confusions: int = 10) -> Report:
    items = list(triples)
    return Report(
        total=len(items),
        accuracy=accuracy(items),
        macro_f1=macro_f1(items),
        per_label=per_label(items),
        confusions=confusion_pairs(items, top_confusions),
        triage=triage(items, threshold),
    )
