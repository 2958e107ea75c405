"""Who earns points when a case closes as fixed, and how a closure takes them back: pure
decisions over plain values (no session, no clock).

The rules, after the reward schemes of Chinese city management (西安: points only once a
problem is confirmed, the same problem rewarded once; 深圳: the first reporter rewarded, a daily
cap) and what gaming them looks like (one problem split into many reports):

- one award per reporter per case: several reports by one reporter in one case earn once;
- the first reporter (the reporter of the case's earliest report) earns ``first_report``
  points, every other reporter of the case ("me too") ``me_too`` points;
- a reporter who already holds a standing award on this case earns nothing more
  (``already_awarded``): a case closed as fixed, reopened and closed as fixed again pays once;
- a reporter who holds a standing award for another case of the same category whose first
  report lies within ``split_radius_m`` of this case's first report and within the split window
  (by default the same local day) earns nothing (``split_problem``): one problem split into
  several reports pays once;
- awards count against a daily cap per reporter (the local day of the award, in the city's
  time zone): an award that would pass it is trimmed to what is left, and skipped at 0
  (``daily_cap``). Reversed awards still count against the day they were made, so closing and
  invalidating cases never frees room under the cap.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routing.merge import distance_m

FIRST_REPORT = "first_report"
ME_TOO = "me_too"
ALREADY_AWARDED = "already_awarded"
SPLIT_PROBLEM = "split_problem"
DAILY_CAP = "daily_cap"
# The policy gives no points for this kind of report (set to 0).
NO_POINTS = "no_points"


@dataclass(frozen=True)
class PointsPolicy:
    first_report: int = 10
    me_too: int = 3
    daily_cap: int = 30
    split_radius_m: float = 100.0
    # Two cases' first reports fewer than this many local days apart are one problem:
    # 1 means the same local day, 2 the same or the next day, 0 turns the split rule off.
    split_window_days: int = 1
    timezone: str = "Asia/Shanghai"

    def __post_init__(self) -> None:
        if min(self.first_report, self.me_too, self.daily_cap) < 0:
            raise ValueError("points and the daily cap are never negative")
        if self.split_radius_m < 0 or self.split_window_days < 0:
            raise ValueError("the split radius and window are never negative")
        try:
            ZoneInfo(self.timezone)  # an unknown zone fails here, not at the first award
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {self.timezone!r}") from None


def local_day(moment: datetime, timezone: str) -> date:
    """The day ``moment`` falls on in ``timezone`` (a naive moment is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment.astimezone(ZoneInfo(timezone)).date()


@dataclass(frozen=True)
class CaseReport:
    """One report of the case being closed."""

    report_id: int
    reporter_id: int
    received_at: datetime


@dataclass(frozen=True)
class CaseFootprint:
    """What the split rule compares between two cases: category, where and when the first
    report was made."""

    case_id: int
    category: str | None
    lat: float | None
    lon: float | None
    first_received_at: datetime | None


@dataclass(frozen=True)
class StandingAward:
    """An award of the reporter's that no reversal cancelled, with the case it was made on."""

    entry_id: int
    reporter_id: int
    case: CaseFootprint
    report_id: int | None
    points: int


@dataclass(frozen=True)
class Award:
    """An award entry to write."""

    reporter_id: int
    report_id: int
    points: int
    reason: str
    note: str


@dataclass(frozen=True)
class Skip:
    """A reporter of the case who earns nothing this time, and why."""

    reporter_id: int
    report_id: int
    reason: str
    note: str


@dataclass(frozen=True)
class Reversal:
    """A reversal entry to write: exactly the negative of the award it names."""

    reverses_id: int
    reporter_id: int
    report_id: int | None
    points: int
    reason: str
    note: str


@dataclass(frozen=True)
class PointsDecision:
    awards: tuple[Award, ...] = ()
    skips: tuple[Skip, ...] = ()
    reversals: tuple[Reversal, ...] = ()

    def as_detail(self) -> dict[str, Any]:
        """For the close event's detail, so the timeline explains every entry and every skip."""
        return {
            "awarded": [
                {
                    "reporter_id": a.reporter_id,
                    "report_id": a.report_id,
                    "points": a.points,
                    "reason": a.reason,
                }
                for a in self.awards
            ],
            "skipped": [
                {"reporter_id": s.reporter_id, "report_id": s.report_id, "reason": s.reason}
                for s in self.skips
            ],
            "reversed": [
                {
                    "reporter_id": r.reporter_id,
                    "reverses_id": r.reverses_id,
                    "points": r.points,
                    "reason": r.reason,
                }
                for r in self.reversals
            ],
        }


def _earliest(reports: Iterable[CaseReport]) -> list[CaseReport]:
    """Each reporter's earliest report in the case, earliest reporter first."""
    by_reporter: dict[int, CaseReport] = {}
    for report in sorted(reports, key=lambda r: (r.received_at, r.report_id)):
        by_reporter.setdefault(report.reporter_id, report)
    return list(by_reporter.values())


def same_problem(a: CaseFootprint, b: CaseFootprint, policy: PointsPolicy) -> bool:
    """Whether two cases look like one problem split into several reports: same category,
    first reports within the split radius and window."""
    if a.case_id == b.case_id or a.category is None or a.category != b.category:
        return False
    if None in (a.lat, a.lon, b.lat, b.lon):
        return False
    if a.first_received_at is None or b.first_received_at is None:
        return False
    days_apart = abs(
        (
            local_day(a.first_received_at, policy.timezone)
            - local_day(b.first_received_at, policy.timezone)
        ).days
    )
    if days_apart >= policy.split_window_days:
        return False
    distance = distance_m(a.lat, a.lon, b.lat, b.lon)  # type: ignore[arg-type]
    return distance <= policy.split_radius_m


def decide_awards(
    case: CaseFootprint,
    reports: Sequence[CaseReport],
    standing: Sequence[StandingAward],
    awarded_today: Mapping[int, int],
    policy: PointsPolicy,
) -> PointsDecision:
    """The awards for a case closing as fixed, and the reporters skipped with their reasons.

    ``standing``: the standing awards of the case's reporters that the rules look at (on this
    case, and on other cases of its category); ``awarded_today``: the points each reporter was
    awarded on the day of this closing (reversed awards included)."""
    awards: list[Award] = []
    skips: list[Skip] = []
    earliest = _earliest(reports)
    first_reporter = earliest[0].reporter_id if earliest else None
    for report in earliest:
        reporter = report.reporter_id
        mine = [award for award in standing if award.reporter_id == reporter]
        if any(award.case.case_id == case.case_id for award in mine):
            note = f"Reporter {reporter} already holds an award for case {case.case_id}."
            skips.append(Skip(reporter, report.report_id, ALREADY_AWARDED, note))
            continue
        twin = next((a for a in mine if same_problem(case, a.case, policy)), None)
        if twin is not None:
            note = (
                f"Reporter {reporter} was already rewarded for case {twin.case.case_id}, "
                "the same problem nearby on the same day."
            )
            skips.append(Skip(reporter, report.report_id, SPLIT_PROBLEM, note))
            continue
        first = reporter == first_reporter
        full = policy.first_report if first else policy.me_too
        reason = FIRST_REPORT if first else ME_TOO
        if full <= 0:
            note = f"The policy gives no points for a {reason} report."
            skips.append(Skip(reporter, report.report_id, NO_POINTS, note))
            continue
        room = max(policy.daily_cap - awarded_today.get(reporter, 0), 0)
        points = min(full, room)
        if points <= 0:
            note = f"Reporter {reporter} reached the daily cap of {policy.daily_cap} points."
            skips.append(Skip(reporter, report.report_id, DAILY_CAP, note))
            continue
        note = "First report of the problem." if first else "Also reported the problem."
        if points < full:
            note += f" Trimmed from {full} to {points} by the daily cap of {policy.daily_cap}."
        awards.append(Award(reporter, report.report_id, points, reason, note))
    return PointsDecision(awards=tuple(awards), skips=tuple(skips))


def decide_reversals(
    standing_on_case: Sequence[StandingAward], reason: str, note: str = ""
) -> PointsDecision:
    """One reversal per standing award of the case, each cancelling exactly its award."""
    reversals = tuple(
        Reversal(
            reverses_id=award.entry_id,
            reporter_id=award.reporter_id,
            report_id=award.report_id,
            points=-award.points,
            reason=reason,
            note=note or f"Cancels award {award.entry_id}.",
        )
        for award in sorted(standing_on_case, key=lambda a: a.entry_id)
    )
    return PointsDecision(reversals=reversals)
