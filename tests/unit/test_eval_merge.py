"""The merge evaluation's replay and pairwise metric, on a tiny synthetic stream (no real data)."""

from __future__ import annotations

import importlib.util
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_merge.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("eval_merge", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["eval_merge"] = module
    spec.loader.exec_module(module)
    return module


em = _load()

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
LAT, LON = 31.15, 121.74
HOUR = timedelta(hours=1)


def report(report_id: int, north_m: float, hours: float, category: str = "pothole") -> object:
    return em.Report(report_id, category, LAT + north_m / 111_195, LON, T0 + hours * HOUR)


def test_report_joins_case_opened_by_first_report_not_a_later_member() -> None:
    # 2 is 40 m from 1 and joins it; 3 is 40 m from 2 but 80 m from the case's first report.
    stream = [report(1, 0, 0), report(2, 40, 1), report(3, 80, 2)]
    case_of = em.replay(stream, 50, 24 * HOUR)
    assert case_of == {1: 1, 2: 1, 3: 3}


def test_window_counts_from_case_opening_and_categories_never_mix() -> None:
    stream = [
        report(1, 0, 0),
        report(2, 5, 20),  # 20 h after the case opened: joins
        report(3, 5, 30),  # 30 h after opening, 10 h after report 2: opens its own case
        report(4, 0, 1, category="streetlight"),  # same spot, other category
    ]
    case_of = em.replay(stream, 50, 24 * HOUR)
    assert case_of == {1: 1, 2: 1, 3: 3, 4: 4}


def test_nearest_open_case_wins_and_replay_is_in_time_order() -> None:
    # Given out of order on purpose: 10 opens at 0 m, 11 at 60 m; 12 sits at 45 m.
    stream = [report(12, 45, 2), report(11, 60, 1), report(10, 0, 0)]
    case_of = em.replay(stream, 50, 24 * HOUR)
    assert case_of == {10: 10, 11: 11, 12: 11}


def test_predicted_pairs_are_all_pairs_within_a_case() -> None:
    assert em.predicted_pairs({1: 1, 2: 1, 3: 1, 4: 4, 5: 4, 6: 6}) == {
        (1, 2),
        (1, 3),
        (2, 3),
        (4, 5),
    }


def test_pairwise_precision_recall_and_merges() -> None:
    labels = {
        (1, 2): em.Label(True, "high"),
        (1, 3): em.Label(False, "high"),
        (4, 5): em.Label(True, "low"),
        (6, 7): em.Label(True, "high"),  # 7 is not in the replay: not counted
        (4, 6): em.Label(True, "medium"),
    }
    case_of = {1: 1, 2: 1, 3: 1, 4: 4, 5: 4, 6: 6}
    scores = em.score(case_of, labels)
    # predicted: (1,2) (1,3) (2,3) (4,5); true: (1,2) (4,5) (4,6)
    assert (scores.predicted, scores.true, scores.tp) == (4, 3, 2)
    assert (scores.fp, scores.fn) == (2, 1)
    assert scores.precision == pytest.approx(0.5)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(4 / 7)
    assert scores.unlabelled == 1  # (2, 3) was never a candidate
    assert scores.merges == 3  # reports 2, 3 and 5 joined an existing case

    low = [key for key, label in labels.items() if label.confidence == "low"]
    confident = em.score(case_of, labels, low)
    assert (confident.predicted, confident.true, confident.tp) == (3, 2, 1)


def test_empty_replay_has_no_precision() -> None:
    scores = em.score({1: 1, 2: 2}, {(1, 2): em.Label(True, "high")})
    assert scores.precision is None and scores.recall == 0.0 and scores.f1 is None


def test_candidate_pairs_use_category_distance_and_time() -> None:
    stream = [
        report(1, 0, 0),
        report(2, 250, 100),  # within 300 m and 7 days of 1
        report(3, 350, 1),  # too far from 1, 100 m from 2
        report(4, 0, 200),  # more than 7 days after 1, 4 days after 2
        report(5, 0, 2, category="graffiti"),
    ]
    assert sorted(em.candidate_pairs(stream)) == [(1, 2), (2, 3), (2, 4)]


def test_load_reports_and_labels(tmp_path: Path) -> None:
    data = tmp_path / "stream.csv"
    data.write_text(
        "id,created_at,request_type,lat,lng\n"
        "7,2016-05-02T10:00:00Z,Pothole Issue,41.49,-71.31\n"
        "5,2016-05-01T10:00:00Z,,41.49,-71.31\n"
        "6,2016-05-03T10:00:00Z,Pothole Issue,,\n",
        encoding="utf-8",
    )
    reports = em.load_reports(data)
    assert [(r.id, r.category) for r in reports] == [(5, em.NO_TYPE), (7, "Pothole Issue")]
    assert reports[1].received_at == datetime(2016, 5, 2, 10, tzinfo=UTC)

    labels_path = tmp_path / "labels.csv"
    labels_path.write_text(
        "id_a,id_b,same,confidence,basis\n9,7,1,low,a\n5,7,0,high,b\n", encoding="utf-8"
    )
    assert em.load_labels(labels_path) == {
        (7, 9): em.Label(True, "low"),
        (5, 7): em.Label(False, "high"),
    }


def test_grid_marks_the_default_setting() -> None:
    stream = [report(1, 0, 0), report(2, 30, 1)]
    rows = em.evaluate_grid(stream, {(1, 2): em.Label(True, "high")})
    assert len(rows) == len(em.RADII_M) * len(em.WINDOWS_H)
    defaults = [row for row in rows if row.is_default]
    assert len(defaults) == 1 and defaults[0].all_labels.recall == 1.0
    smallest = next(row for row in rows if row.radius_m == 25 and row.window_h == 6)
    assert smallest.all_labels.recall == 0.0
