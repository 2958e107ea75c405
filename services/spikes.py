"""Spike alerts: the categories whose reports in a community over the last 24 hours are out of
line with that community's own last 28 days (routing.spikes decides; docs/statistics.md,
"Spikes", explains the rule), for /api/v1/stats and /api/v1/spikes, and announced once on the
``stats.spike`` topic by the beat task. Nothing here commits.

A report counts in the community its case's location lies in: the most specific office whose
jurisdiction covers it, which the case keeps as ``routing.polygon`` when it is routed. That is
not the case's office: waterlogging goes to a district department, yet it is the community
that floods. A report without a location, or outside every community, or not yet made a case,
or whose case has no category, counts nowhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from models.base import UTCDateTime
from models.entities import Case, Category, OutboxMessage, Report, SpikeAlert
from routing import spikes as rule
from services import statistics
from services.notifications import ask_for_relay

SPIKE_TOPIC = "stats.spike"
DETECT_SPIKES = "cityrelay.detect_spikes"
LAST = timedelta(hours=24)
BASELINE = timedelta(days=rule.BASELINE_DAYS)
# A spike is announced again only once this long has passed since it last was.
ANNOUNCE_EVERY = timedelta(hours=24)


@dataclass(frozen=True)
class CurrentSpike:
    """A spike as the API shows it: the community (``office``), the category, the counts the
    rule saw, and when the first of the last 24 hours' reports came in (``since``)."""

    office_id: int
    office: str
    office_name: str
    category: str
    category_name: str
    last_24h: int
    baseline_per_day: float
    threshold: float
    ratio: float | None
    since: datetime

    def as_json(self) -> dict[str, Any]:
        answer = asdict(self)
        answer.pop("office_id")
        return answer


def current_spikes(
    session: Session,
    now: datetime,
    *,
    office_ids: frozenset[int] | None = None,
    category: str | None = None,
    group: str | None = None,
) -> list[CurrentSpike]:
    """The spikes as of ``now``, in the communities among ``office_ids`` (None: every one), of
    ``category`` or of the categories of ``group``; the furthest above its threshold first.

    One grouped query: the reports received in the last 29 days (the index on ``received_at``
    finds them), counted by case, then joined to their cases and added up per community and
    category: the count of the last 24 hours and of the whole 29 days. Only groups with at
    least MIN_REPORTS in the last 24 hours come back, since fewer is never a spike."""
    recent_from = now - LAST
    recent = Report.received_at >= recent_from
    # Reports first, by case: the range on received_at is what narrows, whatever the number of
    # cases, and the cases are then looked up by id.
    per_case = (
        select(
            Report.case_id.label("case_id"),
            func.sum(case((recent, 1), else_=0)).label("last_24h"),
            func.count().label("reports"),
            func.min(case((recent, Report.received_at)), type_=UTCDateTime).label("since"),
        )
        .where(
            Report.received_at >= recent_from - BASELINE,
            Report.received_at <= now,
            Report.case_id.is_not(None),
        )
        .group_by(Report.case_id)
        .subquery("per_case")
    )
    # Grouped by the community's code and the category alone, narrow rows: names are looked up
    # after, for the few groups that come back.
    community_code = Case.routing["polygon"].as_string().label("community")
    last_24h = func.sum(per_case.c.last_24h)
    statement = (
        select(
            community_code,
            Case.category_code.label("category"),
            last_24h.label("last_24h"),
            func.sum(per_case.c.reports).label("reports"),
            func.min(per_case.c.since, type_=UTCDateTime).label("since"),
        )
        .select_from(per_case)
        .join(Case, Case.id == per_case.c.case_id)
        .where(Case.category_code.is_not(None))
        .group_by(community_code, Case.category_code)
        .having(last_24h >= rule.MIN_REPORTS)
    )
    communities = {office.code: office for office in statistics.communities(session, office_ids)}
    if not communities:
        return []
    narrowing = []
    if office_ids is not None:
        narrowing.append(community_code.in_(sorted(communities)))
    if category is not None:
        narrowing.append(Case.category_code == category)
    if group is not None:
        narrowing.append(
            Case.category_code.in_(select(Category.code).where(Category.group_zh == group))
        )
    # The last 24 hours first: only the few groups with enough reports in them can be spikes,
    # and only their 28 days are then added up.
    candidates = session.execute(
        select(community_code, Case.category_code)
        .select_from(Report)
        .join(Case, Case.id == Report.case_id)
        .where(
            Report.received_at >= recent_from,
            Report.received_at <= now,
            Case.category_code.is_not(None),
            *narrowing,
        )
        .group_by(community_code, Case.category_code)
        .having(func.count() >= rule.MIN_REPORTS)
    ).all()
    candidates = [(c, k) for c, k in candidates if c in communities]
    if not candidates:
        return []
    statement = statement.where(
        *narrowing,
        community_code.in_(sorted({c for c, _ in candidates})),
        Case.category_code.in_(sorted({k for _, k in candidates})),
    )
    rows = {
        (row.community, row.category): row
        for row in session.execute(statement)
        if row.community in communities
    }
    found = rule.spikes(
        rule.Counts(
            community=row.community,
            category=row.category,
            last_24h=int(row.last_24h),
            baseline_reports=int(row.reports) - int(row.last_24h),
        )
        for row in rows.values()
    )
    names = {
        row.code: row.name_zh
        for row in session.execute(
            select(Category.code, Category.name_zh).where(
                Category.code.in_(sorted({spike.category for spike in found}))
            )
        )
    }
    answer = []
    for spike in found:
        office = communities[spike.community]
        answer.append(
            CurrentSpike(
                office_id=office.id,
                office=office.code,
                office_name=office.name,
                category=spike.category,
                category_name=names[spike.category],
                last_24h=spike.last_24h,
                baseline_per_day=spike.baseline_per_day,
                threshold=spike.threshold,
                ratio=spike.ratio,
                since=rows[(spike.community, spike.category)].since,
            )
        )
    return answer


def announce_spikes(session: Session, now: datetime, time_zone: str) -> list[CurrentSpike]:
    """Write one ``stats.spike`` notification (for ``office:<community>``) per current spike
    not announced in the last 24 hours, and the ``spike_alerts`` row that says it was; answers
    the spikes announced. A second run finds them announced; two runs at once are kept apart
    by the row's unique community, category and day (the loser skips it)."""
    found = current_spikes(session, now)
    if not found:
        return []
    announced_lately = {
        (row.office_id, row.category_code)
        for row in session.execute(
            select(SpikeAlert.office_id, SpikeAlert.category_code).where(
                SpikeAlert.announced_at > now - ANNOUNCE_EVERY
            )
        )
    }
    day = now.astimezone(ZoneInfo(time_zone)).date()
    announced: list[CurrentSpike] = []
    for spike in found:
        if (spike.office_id, spike.category) in announced_lately:
            continue
        alert = SpikeAlert(
            office_id=spike.office_id,
            category_code=spike.category,
            day=day,
            announced_at=now,
            last_24h=spike.last_24h,
            baseline_per_day=spike.baseline_per_day,
            threshold=spike.threshold,
        )
        try:
            with session.begin_nested():
                session.add(alert)
        except IntegrityError:
            # Another run announced it first today: its notification stands.
            continue
        session.add(
            OutboxMessage(
                topic=SPIKE_TOPIC,
                recipient=f"office:{spike.office}",
                payload=spike_payload(spike, now),
            )
        )
        announced.append(spike)
    if announced:
        session.flush()
        ask_for_relay(session)
    return announced


def spike_payload(spike: CurrentSpike, now: datetime) -> dict[str, Any]:
    return {
        **spike.as_json(),
        "since": spike.since.isoformat(),
        "detected_at": now.isoformat(),
    }


def as_json(found: Sequence[CurrentSpike]) -> list[dict[str, Any]]:
    return [spike.as_json() for spike in found]
