"""Precision and recall of "me too" merging on a replayed real stream.

The stream is the SeeClickFix archive for Newport, Rhode Island (2009-2017; data from
seeclickfix.com, CC BY-NC-SA 3.0 US), read from ``../shared/data`` at run time and never copied
into this repository. Reports are replayed in time order through ``routing.merge.find_match``
as ``services/processing.py`` uses it: a report joins the nearest open case of its category whose
first report lies within the radius and opened at most the window before it, or opens a case of
its own at its own position and time. The request type is the category (an empty type is one
category of its own). Cases stay open for the whole replay: the archive's closing times are not
reliable.

Ground truth is ``benchmarks/data/newport_merge_labels.csv``: every pair of reports with the
same request type within 300 m and 7 days of each other, labelled by hand as the same problem or
not (ids only, no text from the data). Pairs outside that set are taken as different problems,
which holds for every setting here except that two reports up to twice the radius apart can end
in one case; such predicted pairs count as false positives and are reported.

Metrics are pairwise: a predicted pair is two reports that end in the same case; a true pair is
a labelled-same pair whose two reports are both in the replay.

    .venv/bin/python benchmarks/eval_merge.py [--data PATH] [--labels PATH] [--output PATH]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import platform
import sys
from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import combinations
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from routing.merge import (  # noqa: E402
    DEFAULT_RADIUS_M,
    DEFAULT_WINDOW,
    OpenCase,
    distance_m,
    find_match,
)

DATASET_DIR = Path("seeclickfix_newport_en")
DATASET_FILE = "newport_ri_issues_2009_2017.csv"
DEFAULT_DATA = ROOT.parent / "shared" / "data"
DEFAULT_LABELS = HERE / "data" / "newport_merge_labels.csv"
DEFAULT_OUTPUT = HERE / "results" / "merge.md"

RADII_M: tuple[float, ...] = (25.0, 50.0, 100.0, 200.0)
WINDOWS_H: tuple[float, ...] = (6.0, 24.0, 72.0)
NO_TYPE = "(no request type)"

# Candidate pairs for labelling: same request type, this close in space and time.
CANDIDATE_RADIUS_M = 300.0
CANDIDATE_WINDOW = timedelta(days=7)

Pair = tuple[int, int]


@dataclass(frozen=True)
class Report:
    id: int
    category: str
    lat: float
    lon: float
    received_at: datetime


@dataclass(frozen=True)
class Label:
    same: bool
    confidence: str


@dataclass(frozen=True)
class Scores:
    predicted: int  # predicted pairs counted
    true: int  # labelled-same pairs counted
    tp: int
    unlabelled: int  # predicted pairs outside the labelled candidate set
    merges: int

    @property
    def fp(self) -> int:
        return self.predicted - self.tp

    @property
    def fn(self) -> int:
        return self.true - self.tp

    @property
    def precision(self) -> float | None:
        return self.tp / self.predicted if self.predicted else None

    @property
    def recall(self) -> float | None:
        return self.tp / self.true if self.true else None

    @property
    def f1(self) -> float | None:
        p, r = self.precision, self.recall
        if p is None or r is None or p + r == 0:
            return None
        return 2 * p * r / (p + r)


def pair(a: int, b: int) -> Pair:
    return (a, b) if a < b else (b, a)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))


def resolve_data(path: Path) -> Path:
    """A CSV file as given, or the dataset's CSV inside a data folder."""
    if path.is_dir():
        nested = path / DATASET_DIR / DATASET_FILE
        return nested if nested.exists() else path / DATASET_FILE
    return path


def load_reports(path: Path) -> list[Report]:
    """Reports with a position and a time, in replay order (time, then id)."""
    reports = []
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            try:
                lat, lon = float(row["lat"]), float(row["lng"])
                received_at = parse_time(row["created_at"])
                report_id = int(row["id"])
            except (KeyError, TypeError, ValueError):
                continue
            category = (row.get("request_type") or "").strip() or NO_TYPE
            reports.append(Report(report_id, category, lat, lon, received_at))
    return sorted(reports, key=lambda r: (r.received_at, r.id))


def load_labels(path: Path) -> dict[Pair, Label]:
    labels: dict[Pair, Label] = {}
    with path.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            key = pair(int(row["id_a"]), int(row["id_b"]))
            same = row["same"].strip().lower() in {"1", "true", "yes", "y"}
            labels[key] = Label(same, row["confidence"].strip().lower())
    return labels


def candidate_pairs(
    reports: Sequence[Report],
    radius_m: float = CANDIDATE_RADIUS_M,
    window: timedelta = CANDIDATE_WINDOW,
) -> list[Pair]:
    """Pairs of reports of one category within ``radius_m`` and ``window`` of each other."""
    ordered = sorted(reports, key=lambda r: (r.received_at, r.id))
    found = []
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.received_at - a.received_at > window:
                break
            if a.category == b.category and distance_m(a.lat, a.lon, b.lat, b.lon) <= radius_m:
                found.append(pair(a.id, b.id))
    return found


def replay(reports: Iterable[Report], radius_m: float, window: timedelta) -> dict[int, int]:
    """Report id -> case id (the id of the case's first report), replaying in time order."""
    open_cases: dict[str, list[OpenCase]] = defaultdict(list)
    case_of: dict[int, int] = {}
    for report in sorted(reports, key=lambda r: (r.received_at, r.id)):
        match = find_match(
            report.category,
            report.lat,
            report.lon,
            report.received_at,
            open_cases[report.category],
            radius_m,
            window,
        )
        if match is None:
            case = OpenCase(report.id, report.category, report.lat, report.lon, report.received_at)
            open_cases[report.category].append(case)
            case_of[report.id] = report.id
        else:
            case_of[report.id] = match.case_id
    return case_of


def predicted_pairs(case_of: Mapping[int, int]) -> set[Pair]:
    """Every pair of reports that ended in the same case."""
    members: dict[int, list[int]] = defaultdict(list)
    for report_id, case_id in case_of.items():
        members[case_id].append(report_id)
    return {pair(a, b) for ids in members.values() for a, b in combinations(sorted(ids), 2)}


def score(
    case_of: Mapping[int, int],
    labels: Mapping[Pair, Label],
    ignore: Collection[Pair] = (),
) -> Scores:
    """Pairwise scores of a replay against the labels. Labelled pairs count only when both
    reports are in the replay; pairs in ``ignore`` count neither way."""
    present = set(case_of)
    skip = set(ignore)
    predicted = predicted_pairs(case_of) - skip
    true = {
        key
        for key, label in labels.items()
        if label.same and key not in skip and key[0] in present and key[1] in present
    }
    return Scores(
        predicted=len(predicted),
        true=len(true),
        tp=len(predicted & true),
        unlabelled=len(predicted - labels.keys()),
        merges=sum(1 for report_id, case_id in case_of.items() if report_id != case_id),
    )


def restrict(case_of: Mapping[int, int], ids: Collection[int]) -> dict[int, int]:
    keep = set(ids)
    return {r: c for r, c in case_of.items() if r in keep}


@dataclass(frozen=True)
class Row:
    radius_m: float
    window_h: float
    all_labels: Scores
    confident: Scores  # low-confidence labels ignored

    @property
    def is_default(self) -> bool:
        return (
            self.radius_m == DEFAULT_RADIUS_M and timedelta(hours=self.window_h) == DEFAULT_WINDOW
        )


def evaluate_grid(
    reports: Sequence[Report],
    labels: Mapping[Pair, Label],
    radii_m: Sequence[float] = RADII_M,
    windows_h: Sequence[float] = WINDOWS_H,
) -> list[Row]:
    low = [key for key, label in labels.items() if label.confidence == "low"]
    rows = []
    for radius_m in radii_m:
        for window_h in windows_h:
            case_of = replay(reports, radius_m, timedelta(hours=window_h))
            rows.append(
                Row(radius_m, window_h, score(case_of, labels), score(case_of, labels, low))
            )
    return rows


def per_category(
    reports: Sequence[Report],
    labels: Mapping[Pair, Label],
    radius_m: float,
    window_h: float,
) -> dict[str, Scores]:
    """Scores per category for one setting (categories never share a case)."""
    case_of = replay(reports, radius_m, timedelta(hours=window_h))
    by_category: dict[str, list[int]] = defaultdict(list)
    for report in reports:
        by_category[report.category].append(report.id)
    return {
        category: score(restrict(case_of, ids), labels)
        for category, ids in sorted(by_category.items())
    }


def fmt(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def grid_table(rows: Sequence[Row]) -> list[str]:
    lines = [
        "| R (m) | T (h) | merges | predicted pairs | of which unlabelled | true pairs "
        "| TP | FP | FN | precision | recall | F1 "
        "| precision (no low-conf.) | recall (no low-conf.) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        s, c = row.all_labels, row.confident
        mark = " **default**" if row.is_default else ""
        lines.append(
            f"| {row.radius_m:.0f}{mark} | {row.window_h:.0f} | {s.merges} | {s.predicted} "
            f"| {s.unlabelled} | {s.true} | {s.tp} | {s.fp} | {s.fn} | {fmt(s.precision)} "
            f"| {fmt(s.recall)} | {fmt(s.f1)} | {fmt(c.precision)} | {fmt(c.recall)} |"
        )
    return lines


def category_table(
    reports: Sequence[Report], labels: Mapping[Pair, Label], rows: Sequence[Row]
) -> list[str]:
    """Per category: the default's numbers and the setting with the best F1."""
    default = per_category(reports, labels, DEFAULT_RADIUS_M, DEFAULT_WINDOW / timedelta(hours=1))
    settings = {(row.radius_m, row.window_h) for row in rows}
    grids = {s: per_category(reports, labels, *s) for s in sorted(settings)}
    lines = [
        "| category | reports | true pairs | default: merges | default: precision "
        "| default: recall | best F1 setting (R m / T h) | its precision | its recall |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    counts: dict[str, int] = defaultdict(int)
    for report in reports:
        counts[report.category] += 1
    for category, d in default.items():
        if d.true == 0 and d.predicted == 0:
            continue
        # Best F1; ties go to the smallest radius, then the shortest window.
        best = max(
            sorted(grids),
            key=lambda s: (grids[s][category].f1 or 0.0, -s[0], -s[1]),
        )
        b = grids[best][category]
        best_text = f"{best[0]:.0f} / {best[1]:.0f}" if b.f1 else "–"
        lines.append(
            f"| {category} | {counts[category]} | {d.true} | {d.merges} | {fmt(d.precision)} "
            f"| {fmt(d.recall)} | {best_text} | {fmt(b.precision)} | {fmt(b.recall)} |"
        )
    return lines


def label_summary(labels: Mapping[Pair, Label]) -> str:
    same = sum(1 for label in labels.values() if label.same)
    by_confidence: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for label in labels.values():
        by_confidence[label.confidence][0 if label.same else 1] += 1
    parts = ", ".join(
        f"{conf}: {s} same / {n} not" for conf, (s, n) in sorted(by_confidence.items())
    )
    return f"{len(labels)} candidate pairs, {same} labelled same ({parts})"


def write_report(
    output: Path,
    labels_path: Path,
    reports: Sequence[Report],
    labels: Mapping[Pair, Label],
    rows: Sequence[Row],
    categories: Sequence[str],
) -> None:
    default = next(row for row in rows if row.is_default)
    d = default.all_labels
    best = max(rows, key=lambda row: (row.all_labels.f1 or 0.0, -row.radius_m, -row.window_h))
    b = best.all_labels
    now = dt.datetime.now(dt.UTC)
    lines = [
        '# Merge ("me too") precision and recall on a replayed real stream',
        "",
        f"Measured {now:%Y-%m-%d %H:%M} UTC on {platform.machine()}, Python "
        f"{platform.python_version()} with `.venv/bin/python benchmarks/eval_merge.py`.",
        "",
        "## Data",
        "",
        "SeeClickFix issues for Newport, Rhode Island, 2009-2017 (archive pulled from the "
        "SeeClickFix API v2 on 2017-09-03 by the Newport Data Project, "
        "`NewportDataProject/seeclickfix-analysis`). Data from **seeclickfix.com**, licensed "
        "CC BY-NC-SA 3.0 US (attribution, non-commercial, share-alike): it is read from "
        f"`../shared/data/{DATASET_DIR}/{DATASET_FILE}` (outside the repository) at run "
        "time and none of its text is stored in this repository; the labels file holds issue "
        "ids only.",
        "",
        f"Replayed: {len(reports)} reports with real timestamps and coordinates, "
        f"{len(categories)} categories (the request type; reports without one form a category "
        "of their own). Cases stay open for the whole replay (the archive's closing times are "
        "not reliable), so this measures the merge rule alone.",
        "",
        "## Labels",
        "",
        f"`{labels_path.relative_to(ROOT) if labels_path.is_relative_to(ROOT) else labels_path}`"
        f": {label_summary(labels)}.",
        "",
        "Candidate pairs are every pair of reports with the same request type within "
        f"{CANDIDATE_RADIUS_M:.0f} m and {CANDIDATE_WINDOW.days} days of each other, wider than "
        "any setting measured, so that recall can be measured. Each pair was labelled by hand "
        "from both descriptions, addresses, times and the distance: the same object or spot "
        "described twice (a repeat, a follow-up, a second photo) is *same*; another pole, "
        "another property, another corner or an obviously different problem is *not*. Where a "
        "description is empty the label rests on the address, the type and the timing and is "
        "marked low-confidence. The `basis` column gives the reasoning in a few words of our "
        "own. Pairs outside the candidate set are taken as different problems. The last two "
        "columns below ignore low-confidence pairs (neither counted as predicted nor as true).",
        "",
        "## Results",
        "",
        "Pairwise: a predicted pair is two reports that end in one case; a true pair is a "
        "labelled-same pair whose reports are both replayed. *merges* is the number of reports "
        "that joined an existing case; *of which unlabelled* are predicted pairs outside the "
        "candidate set (counted as false positives). Pairwise counts weigh a case of n reports "
        "as n(n-1)/2 pairs, so one well-reported problem can move the figures a lot.",
        "",
        *grid_table(rows),
        "",
        f"The default, **R = {DEFAULT_RADIUS_M:.0f} m, T = "
        f"{DEFAULT_WINDOW / timedelta(hours=1):.0f} h**, makes {d.merges} merges with "
        f"precision {fmt(d.precision)} and recall {fmt(d.recall)} ({d.tp} of {d.true} "
        f"labelled-same pairs found, {d.fp} wrong pairs). The best F1 on this stream is at "
        f"R = {best.radius_m:.0f} m, T = {best.window_h:.0f} h: precision {fmt(b.precision)}, "
        f"recall {fmt(b.recall)}, F1 {fmt(b.f1)} (default F1 {fmt(d.f1)}).",
        "",
        "### Per category",
        "",
        "Categories with at least one true or predicted pair at the default, with the grid "
        "setting that gives the best F1 for that category alone:",
        "",
        *category_table(reports, labels, rows),
        "",
    ]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text("\n".join(lines), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA,
        help="the shared data folder or the Newport CSV itself (default: ../shared/data)",
    )
    parser.add_argument("--labels", type=Path, default=DEFAULT_LABELS)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    args = parser.parse_args(argv)

    data = resolve_data(args.data)
    if not data.exists():
        print(f"data not found: {data} (see ../shared/data/README.md)", file=sys.stderr)
        return 2
    reports = load_reports(data)
    labels = load_labels(args.labels)
    ids = {report.id for report in reports}
    absent = sum(1 for a, b in labels if a not in ids or b not in ids)
    candidates = set(candidate_pairs(reports))
    unlabelled = candidates - labels.keys()
    print(f"{len(reports)} reports replayed from {data}")
    print(f"labels: {label_summary(labels)}")
    if absent:
        print(f"  {absent} labelled pairs have a report missing from the replay: not counted")
    if unlabelled:
        print(f"  warning: {len(unlabelled)} candidate pairs have no label", file=sys.stderr)

    rows = evaluate_grid(reports, labels)
    print()
    print("\n".join(grid_table(rows)))
    categories = sorted({report.category for report in reports})
    print()
    print("\n".join(category_table(reports, labels, rows)))
    write_report(args.output, args.labels.resolve(), reports, labels, rows, categories)
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
