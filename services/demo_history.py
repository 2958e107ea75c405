"""A demo history for the demo city: a few hundred cases over the last ~90 days, so the
dashboards have something to show on a fresh install.

The past is not written as rows made up to look right: it is played, in time order, through the
services a live city goes through (filing, processing, the case actions, the points ledger, the
overdue sweep), each given the simulated moment as its ``now``. Due times, case events, the
``case_stats`` rows (rewritten by services.statistics in every flush, as live) and the points
entries therefore agree exactly, as if it all had happened.

Only what no service can backdate is set by hand: a report's ``received_at`` (intake stamps the
clock) and the creation times of the demo's own rows. Notifications of the past are written as
the services write them, then stamped with their moment and marked ``skipped``: nobody waited
for them, and a webhook added later must not receive a quarter's worth of stale news. The tasks
the services ask for after commit (processing, the relay) are dropped again: everything they
would do is done.

Deterministic for a given seed and ``now``; idempotent (nothing is done on a database that has
a case, or the demo's reporters, already). Never commits: the caller's unit of work does.
"""

from __future__ import annotations

import heapq
import math
import random
import struct
import zlib
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from models.entities import (
    OUTBOX_SKIPPED,
    ApiKey,
    Case,
    Category,
    Office,
    OutboxMessage,
    PointsEntry,
    Report,
    Reporter,
)
from models.queries import CLOCK_RUNNING_STATUSES
from models.seed import demo_city
from models.session import pending_tasks, set_pending_tasks
from routing import workflow as wf
from routing.classify import Classification
from routing.classify import model_id as bundled_model_id
from routing.merge import distance_m
from routing.rewards import PointsPolicy
from services import casework, escalation, processing, statistics
from services.accounts import Caller, issue_key, register_reporter
from services.filing import NewReport, file_report
from services.photo_store import PhotoStore
from services.photos import check_photos

DEFAULT_SEED = 20240607
DEFAULT_CASES = 300
REPORTERS = 48
HISTORY_DAYS = 90
# The marker: the demo's keys carry this label, so a second run finds them.
DEMO_LABEL = "demo history"
# Demo reports keep this far from the demo city's sample points, where tests and people try
# their first report: it must open a case of its own, not join a demo one.
SAMPLE_POINT_CLEARANCE_M = 300.0
# The quick start's try-it report (README), kept clear for the same reason.
README_POINTS = [(31.154114, 121.737424)]
# How often beat looks for overdue cases (CITYRELAY_OVERDUE_INTERVAL_SECONDS' default).
SWEEP_INTERVAL = timedelta(seconds=60)
STORM_CATEGORY = "waterlogging"

# Category weights of everyday reports (riders see bins, parked bikes and blocked gates most).
CATEGORY_WEIGHTS: dict[str, int] = {
    "bin_overflow": 16,
    "exposed_garbage": 12,
    "illegal_parking": 14,
    "access_restriction": 9,
    "road_damage": 9,
    "street_light": 7,
    "blocked_passage": 6,
    "rider_need": 6,
    "street_vending": 5,
    "illegal_ads": 5,
    "noise": 4,
    "green_space": 4,
    "manhole_cover": 4,
    "traffic_facility": 4,
    "safety_hazard": 4,
    "construction": 3,
    "street_tree": 3,
    "waterlogging": 2,
    "other": 2,
}

TEXTS: dict[str, tuple[str, ...]] = {
    "bin_overflow": (
        "垃圾桶满了，垃圾溢到地上",
        "小区门口垃圾桶满溢，味道很大",
        "分类垃圾桶装不下了",
    ),
    "exposed_garbage": ("路边堆了一堆建筑垃圾", "绿化带里有人倒垃圾", "楼道口垃圾好几天没人清"),
    "illegal_parking": ("共享单车堆满人行道", "机动车停在盲道上", "非机动车乱停挡住出口"),
    "access_restriction": (
        "小区不让骑手进，只能在门口等",
        "门卫不让快递车进小区",
        "小区新装闸机，外卖进不去",
    ),
    "road_damage": ("路面有个大坑，电动车差点摔", "人行道砖块松动翘起", "路面开裂下沉"),
    "street_light": ("这段路灯不亮，晚上很黑", "路灯一闪一闪的", "路口路灯坏了好几天"),
    "blocked_passage": ("消防通道被车堵了", "无障碍坡道被杂物占了", "消防通道堆满电动车"),
    "rider_need": ("换电柜坏了，电池换不了", "附近没有骑手歇脚的地方", "充电桩全坏了"),
    "street_vending": ("路口有人摆摊占道", "早点摊占了半条人行道", "水果摊占道经营"),
    "illegal_ads": ("电线杆上贴满小广告", "墙上喷了办证电话", "公交站牌贴满广告"),
    "noise": ("工地半夜还在施工，很吵", "广场舞音响太响", "店铺喇叭一直循环播放"),
    "green_space": ("绿地被踩秃了", "有人在绿化带里种菜", "草坪被车压坏"),
    "manhole_cover": ("井盖松了，车压过去哐哐响", "窨井盖缺了一块", "井盖不见了，很危险"),
    "traffic_facility": ("红绿灯不亮了", "护栏被撞歪了", "交通标志牌倒了"),
    "safety_hazard": ("电线垂下来快碰到头了", "店招松动，刮风会掉", "楼上花盆放在窗外"),
    "construction": ("工地扬尘很大", "施工围挡倒了", "工地渣土撒了一路"),
    "street_tree": ("行道树断枝挂在半空", "大树倒了压在路上", "树枝挡住了红绿灯"),
    "waterlogging": ("路面积水很深，电动车过不去", "下雨后这里积水到小腿", "地道积水，车子熄火了"),
    "other": ("这里有个问题需要处理", "路边有只流浪狗受伤了", "公共座椅坏了"),
}
ROADS = ("春江路", "海港大道", "合欣路", "东滩大道", "临港路", "江枫路", "滨海路", "望海路")

# Who reports: occupation weight, channels with their weights, platforms.
OCCUPATION_MIX: dict[str, tuple[int, dict[str, int], tuple[str, ...]]] = {
    "rider": (40, {"api": 9, "open311": 1}, ("美团", "饿了么", "闪送")),
    "courier": (25, {"api": 7, "web": 2, "open311": 1}, ("顺丰", "京东", "中通")),
    "driver": (15, {"api": 5, "open311": 3, "web": 2}, ("滴滴", "货拉拉", "曹操出行")),
    "citizen": (20, {"web": 6, "open311": 4}, ("",)),
}
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗"
NAME_ENDINGS = {"rider": "师傅", "courier": "快递员", "driver": "司机", "citizen": "女士"}

CLOSURE_MIX = {
    wf.FIXED: 76,
    wf.INVALID: 6,
    wf.DUPLICATE: 6,
    wf.NOT_RESPONSIBLE: 6,
    wf.NO_FURTHER_ACTION: 6,
}


@dataclass(frozen=True)
class DemoHistory:
    """What a run did: nothing (``reason`` says why), or the history it wrote."""

    seeded: bool
    reason: str = ""
    cases: int = 0
    reports: int = 0
    merged_reports: int = 0
    reporters: int = 0
    # Cases by status, closed ones by closure ("closed:fixed").
    by_status: dict[str, int] = field(default_factory=dict)
    overdue_now: int = 0
    points: int = 0


# ---------------------------------------------------------------- the plan


@dataclass
class _Step:
    """One thing that happens to a planned case: filing or processing a report, or an action
    by ``role`` ("staff", "supervisor", "reporter", "admin")."""

    kind: str
    role: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    report: _PlannedReport | None = None


@dataclass
class _PlannedReport:
    category: str
    reporter: int
    channel: str
    text: str
    lat: float | None
    lon: float | None
    address: str
    received_at: datetime
    report_id: int | None = None


@dataclass
class _PlannedCase:
    category: str
    first: _PlannedReport
    case_id: int | None = None
    # Set when something did not go as planned (the case joined another): later steps skip.
    off_plan: bool = False


@dataclass(order=True)
class _Queued:
    at: datetime
    order: int
    case: _PlannedCase | None = field(compare=False)
    step: _Step = field(compare=False)


class _ReporterChosenOnly:
    """Every demo report names its category, so the classifier is never asked; processing
    still records the model in force."""

    def __init__(self, model: str | None) -> None:
        self.model_id = model

    def classify(self, text: str) -> Classification:
        raise AssertionError("demo reports name their category")


# ---------------------------------------------------------------- entry point


def seed_demo_history(
    session: Session,
    now: datetime,
    *,
    cases: int = DEFAULT_CASES,
    seed: int = DEFAULT_SEED,
    points_policy: PointsPolicy | None = None,
    classifier_model: str | None = None,
    photo_store: PhotoStore | None = None,
) -> DemoHistory:
    """Write about ``cases`` cases of the last ~90 days before ``now`` into the demo city, or
    nothing (and say why) when the database has a case or the demo's keys already, or its
    offices are not the demo city's. With ``photo_store``, every resolution comes with an
    after-photo (a drawn picture, stored there), as the public page shows them."""
    if session.scalar(select(ApiKey.id).where(ApiKey.label == DEMO_LABEL).limit(1)) is not None:
        return DemoHistory(False, "the demo history is there already")
    if session.scalar(select(Case.id).limit(1)) is not None:
        return DemoHistory(False, "the database has cases already")
    # A city of real offices gets no made-up past: only the demo city's offices do.
    demo_codes = {office["code"] for office in demo_city()["offices"]}
    found = set(session.scalars(select(Office.code).where(Office.code.in_(demo_codes))))
    if found != demo_codes:
        return DemoHistory(False, "no demo city: run `cityrelay seed-demo` first")
    now = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    rng = random.Random(seed)
    player = _Player(session, now, rng, points_policy or PointsPolicy(), classifier_model)
    player.photo_store = photo_store
    with player.stamping():
        player.cast()
        player.plan(max(cases, 1))
        player.play()
    return player.summary()


# ---------------------------------------------------------------- playing it


class _Player:
    def __init__(
        self,
        session: Session,
        now: datetime,
        rng: random.Random,
        policy: PointsPolicy,
        classifier_model: str | None,
    ) -> None:
        self.session = session
        self.now = now
        self.photo_store: PhotoStore | None = None
        self.rng = rng
        self.policy = policy
        self.zone = ZoneInfo(policy.timezone)
        self.start = now - timedelta(days=HISTORY_DAYS)
        # The simulated moment: rows written now are stamped with it.
        self.clock = self.start
        self.classifier = _ReporterChosenOnly(classifier_model or bundled_model_id())
        self.queue: list[_Queued] = []
        self.order = 0
        self.planned: list[_PlannedCase] = []
        self.reporters: list[tuple[int, int, str]] = []  # (reporter id, key id, occupation)
        self.callers: dict[tuple[str, int], Caller] = {}
        self.sweeps: set[datetime] = set()
        self.merged = 0
        self.reports = 0
        self.reporter_keys: dict[int, int] = {}

    # ------------------------------------------------------------ stamping

    @contextmanager
    def stamping(self) -> Iterator[None]:
        """While the history plays, rows that take their time from the wall clock get the
        simulated one, and the statistics rows wait for one refresh at the end; afterwards the
        tasks asked for after commit are what they were."""
        # The after-commit task list is the session's own: it gets back what it had.
        pending_before = pending_tasks(self.session)

        def stamp(session: Session, _context: Any, _instances: Any) -> None:
            for obj in session.new:
                if isinstance(obj, OutboxMessage):
                    obj.created_at = obj.next_attempt_at = self.clock
                    obj.status = OUTBOX_SKIPPED
                elif isinstance(obj, Report):
                    # Intake stamps the wall clock; this report came in at the simulated one.
                    obj.received_at = self.clock
                elif isinstance(obj, (Reporter, ApiKey)):
                    obj.created_at = self.clock

        def defer_statistics(session: Session, _context: Any, _instances: Any) -> None:
            # services.statistics noted the cases this flush touches (its listener runs first,
            # being the class's); taking the note away leaves their rows to one refresh at the
            # end, which writes what the last of the per-flush refreshes would have written.
            statistics.skip_refresh_of_this_flush(session)

        event.listen(self.session, "before_flush", stamp)
        event.listen(self.session, "before_flush", defer_statistics)
        try:
            yield
            self.session.flush()
        finally:
            event.remove(self.session, "before_flush", stamp)
            event.remove(self.session, "before_flush", defer_statistics)
            set_pending_tasks(self.session, pending_before)
        case_ids = set(self.session.scalars(select(Case.id)))
        statistics.refresh(self.session, sorted(case_ids))

    # ------------------------------------------------------------ who is there

    def cast(self) -> None:
        session = self.session
        self.communities = list(
            session.scalars(
                select(Office)
                .where(
                    Office.kind == "community",
                    Office.active.is_(True),
                    Office.code.in_([o["code"] for o in demo_city()["offices"]]),
                )
                .order_by(Office.code)
            )
        )
        self.areas: dict[str, BaseGeometry] = {
            o.code: shape(o.jurisdiction) for o in self.communities if o.jurisdiction
        }
        self.categories = {c.code: c for c in session.scalars(select(Category))}
        self.category_weights = {
            code: weight for code, weight in CATEGORY_WEIGHTS.items() if code in self.categories
        }
        self.sample_points = [(p["lat"], p["lon"]) for p in demo_city()["sample_points"]]
        self.sample_points += README_POINTS
        occupations = list(OCCUPATION_MIX)
        weights = [OCCUPATION_MIX[o][0] for o in occupations]
        for number in range(REPORTERS):
            occupation = self.rng.choices(occupations, weights)[0]
            platform = self.rng.choice(OCCUPATION_MIX[occupation][2])
            name = f"{self.rng.choice(SURNAMES)}{NAME_ENDINGS[occupation]}"
            reporter, _key = register_reporter(
                session,
                display_name=f"{name}{number + 1:02d}",
                occupation=occupation,
                platform=platform,
                label=DEMO_LABEL,
            )
            session.flush()
            key_id = session.scalar(select(ApiKey.id).where(ApiKey.reporter_id == reporter.id))
            assert key_id is not None
            self.reporters.append((reporter.id, key_id, occupation))
            self.reporter_keys[reporter.id] = key_id
        # Busy riders report more than the occasional citizen.
        self.reporter_weights = [
            {"rider": 5, "courier": 4, "driver": 3, "citizen": 2}[r[2]] for r in self.reporters
        ]
        admin, _key = issue_key(session, "admin", label=DEMO_LABEL)
        self.admin = Caller(admin.id, "admin", None, None, None)

    def office_caller(self, office: Office, role: str) -> Caller:
        """A key of the office (staff), or of the office above it (its supervisor)."""
        holder = office
        if role == "supervisor" and office.parent is not None:
            holder = office.parent
        cached = self.callers.get((role, holder.id))
        if cached is None:
            key_role = "office" if role == "staff" else "supervisor"
            row, _key = issue_key(self.session, key_role, office_code=holder.code, label=DEMO_LABEL)
            cached = Caller(row.id, key_role, None, holder.id, holder.code)
            self.callers[(role, holder.id)] = cached
        return cached

    def reporter_caller(self, reporter_id: int) -> Caller:
        return Caller(self.reporter_keys[reporter_id], "reporter", reporter_id, None, None)

    # ------------------------------------------------------------ places and moments

    def point_in(self, code: str, category: str, at: datetime) -> tuple[float, float]:
        """A point inside the community, clear of the sample points and of every planned
        report of the same category near in time (so only planned "me too"s merge)."""
        area = self.areas[code]
        min_lon, min_lat, max_lon, max_lat = area.bounds
        radius = self.categories[category].merge_radius_m
        for _ in range(500):
            lon = round(self.rng.uniform(min_lon, max_lon), 6)
            lat = round(self.rng.uniform(min_lat, max_lat), 6)
            if not area.contains(Point(lon, lat)):
                continue
            if any(
                distance_m(lat, lon, p_lat, p_lon) < SAMPLE_POINT_CLEARANCE_M
                for p_lat, p_lon in self.sample_points
            ):
                continue
            if any(
                other.category == category
                and other.first.lat is not None
                and other.first.lon is not None
                and abs(other.first.received_at - at) < timedelta(days=3)
                and distance_m(lat, lon, other.first.lat, other.first.lon) < 4 * radius
                for other in self.planned
            ):
                continue
            return lat, lon
        raise RuntimeError(f"no free point in {code}")

    def near(self, lat: float, lon: float, metres: float) -> tuple[float, float]:
        angle = self.rng.uniform(0, 2 * math.pi)
        step = self.rng.uniform(0, metres)
        dlat = step * math.cos(angle) / 111_195.0
        dlon = step * math.sin(angle) / (111_195.0 * math.cos(math.radians(lat)))
        return round(lat + dlat, 6), round(lon + dlon, 6)

    def daytime(self, day_offset: float) -> datetime:
        """A moment on the local day ``day_offset`` days after the start, when people are out."""
        local_day = (self.start + timedelta(days=day_offset)).astimezone(self.zone).date()
        hour = self.rng.choices(range(7, 23), [2, 4, 4, 3, 4, 5, 4, 3, 3, 4, 4, 5, 4, 3, 2, 1])[0]
        local = datetime.combine(local_day, time(hour, self.rng.randrange(60)), self.zone)
        return local.replace(second=self.rng.randrange(60)).astimezone(UTC)

    def hours(self, low: float, high: float) -> timedelta:
        # Skewed towards the quick end, as office work is.
        return timedelta(hours=low + (high - low) * self.rng.random() ** 2)

    # ------------------------------------------------------------ the plan

    def plan(self, cases: int) -> None:
        storm = max(4, cases // 20) if cases >= 40 else 0
        everyday = cases - storm
        for number in range(everyday):
            # The last two wait at the triage desk: no place for them yet.
            waiting = number >= everyday - 2 and everyday > 20
            self.plan_everyday_case(triage=waiting)
        if storm:
            self.plan_storm(storm)

    def new_report(
        self,
        at: datetime,
        category: str,
        lat: float | None,
        lon: float | None,
        address: str,
        exclude: int | None = None,
    ) -> _PlannedReport:
        while True:
            reporter, _key, occupation = self.rng.choices(self.reporters, self.reporter_weights)[0]
            if reporter != exclude:
                break
        channels = OCCUPATION_MIX[occupation][1]
        channel = self.rng.choices(list(channels), list(channels.values()))[0]
        text = self.rng.choice(TEXTS.get(category, TEXTS["other"]))
        return _PlannedReport(category, reporter, channel, text, lat, lon, address, at)

    def plan_everyday_case(self, *, triage: bool = False) -> None:
        # More reports lately: the demo city is catching on.
        offset = HISTORY_DAYS * math.sqrt(self.rng.random())
        if triage:
            offset = HISTORY_DAYS - self.rng.uniform(0, 1)
        received = self.daytime(min(offset, HISTORY_DAYS - 0.01))
        if received >= self.now - timedelta(minutes=10):
            received = self.now - timedelta(minutes=self.rng.randrange(15, 600))
        category = self.rng.choices(
            list(self.category_weights), list(self.category_weights.values())
        )[0]
        community = self.rng.choice([c for c in self.communities if c.code in self.areas])
        address = f"{self.rng.choice(ROADS)}{self.rng.randrange(1, 999)}号附近"
        # A few only give an address: the triage desk places them.
        placed = self.rng.random() >= 0.06 and not triage
        lat, lon = self.point_in(community.code, category, received) if placed else (None, None)
        first = self.new_report(received, category, lat, lon, f"{community.name} {address}")
        case = _PlannedCase(category, first)
        self.planned.append(case)
        self.enqueue(received, case, _Step("file", report=first))
        processed = received + timedelta(seconds=self.rng.randrange(2, 40))
        self.enqueue(processed, case, _Step("process", report=first))
        steps = self.lifecycle(placed, received)
        end_of_open = self.schedule(case, processed, steps)
        if placed and self.rng.random() < 0.15:
            self.plan_me_too(case, processed, end_of_open)

    def plan_me_too(self, case: _PlannedCase, processed: datetime, end_of_open: datetime) -> None:
        category = self.categories[case.category]
        first = case.first
        assert first.lat is not None and first.lon is not None
        window_end = first.received_at + timedelta(hours=category.merge_window_hours * 0.9)
        last = min(window_end, end_of_open - timedelta(minutes=5), self.now - timedelta(minutes=2))
        reporters = {first.reporter}
        for _ in range(self.rng.choice((1, 1, 1, 2, 3))):
            earliest = processed + timedelta(minutes=2)
            if last <= earliest:
                return
            at = earliest + (last - earliest) * self.rng.random()
            lat, lon = self.near(first.lat, first.lon, category.merge_radius_m * 0.6)
            report = self.new_report(at, case.category, lat, lon, first.address)
            if report.reporter in reporters:
                continue
            reporters.add(report.reporter)
            self.enqueue(at, case, _Step("file", report=report))
            seconds = timedelta(seconds=self.rng.randrange(2, 40))
            self.enqueue(at + seconds, case, _Step("process", report=report))

    def plan_storm(self, count: int) -> None:
        """A summer storm: waterlogging all over one community in the last hours."""
        if STORM_CATEGORY not in self.categories:
            return
        community = self.communities[self.rng.randrange(len(self.communities))]
        begins = self.now - timedelta(hours=self.rng.uniform(9, 14))
        for _ in range(count):
            received = begins + timedelta(minutes=self.rng.uniform(0, 240))
            lat, lon = self.point_in(community.code, STORM_CATEGORY, received)
            address = f"{community.name} {self.rng.choice(ROADS)}{self.rng.randrange(1, 999)}号"
            first = self.new_report(received, STORM_CATEGORY, lat, lon, address)
            case = _PlannedCase(STORM_CATEGORY, first)
            self.planned.append(case)
            self.enqueue(received, case, _Step("file", report=first))
            processed = received + timedelta(seconds=self.rng.randrange(2, 40))
            self.enqueue(processed, case, _Step("process", report=first))
            steps: list[tuple[timedelta, _Step]] = []
            if self.rng.random() < 0.75:
                steps.append((self.hours(0.3, 3), _Step("accept", "staff")))
                if self.rng.random() < 0.6:
                    steps.append(
                        (self.hours(0.2, 2), _Step("start", "staff", {"note": "抽水泵已到场"}))
                    )
                    if self.rng.random() < 0.4:
                        steps.append(
                            (self.hours(1, 4), _Step("resolve", "staff", {"note": "积水已排除"}))
                        )
            end_of_open = self.schedule(case, processed, steps)
            if self.rng.random() < 0.5:
                self.plan_me_too(case, processed, end_of_open)

    def lifecycle(self, placed: bool, received: datetime) -> list[tuple[timedelta, _Step]]:
        """The case's future as (delay after the step before, step); the steps after ``now``
        are dropped by ``schedule``, which leaves recent cases open in every status."""
        rng = self.rng
        steps: list[tuple[timedelta, _Step]] = []

        def add(low: float, high: float, kind: str, role: str, **args: Any) -> None:
            steps.append((self.hours(low, high), _Step(kind, role, args)))

        age = self.now - received
        if not placed:
            # The triage desk places it (or rejects it); the last days' wait for a person still.
            if age < timedelta(days=2):
                return steps
            if rng.random() < 0.2:
                add(1, 24, "close", "admin", closure=wf.INVALID, note="地址无法核实，且无照片。")
                return steps
            add(0.5, 60, "transfer", "admin", to="place", reason="按地址人工定位。")
        elif rng.random() < 0.04:
            add(0.5, 8, "transfer", "staff", to="parent", reason="超出社区处置能力，移交街道。")
        closure = rng.choices(list(CLOSURE_MIX), list(CLOSURE_MIX.values()))[0]
        # A few recent cases the office has not got to: overdue now.
        stall = rng.random() < 0.08 and timedelta(days=2) < age < timedelta(days=30)
        if closure in (wf.INVALID, wf.DUPLICATE) and rng.random() < 0.5:
            add(1, 30, "close", "supervisor", closure=closure, note=_CLOSE_NOTES[closure])
            return steps
        add(0.1, 8, "accept", "staff")
        if stall and rng.random() < 0.4:
            return steps
        if closure != wf.FIXED:
            if rng.random() < 0.5:
                add(0.5, 12, "start", "staff")
            add(2, 72, "close", "supervisor", closure=closure, note=_CLOSE_NOTES[closure])
            return steps
        if rng.random() < 0.15:
            add(0.5, 10, "ask", "staff", question="请补充具体位置或照片。")
            if rng.random() < 0.85:
                add(0.5, 30, "answer", "reporter", text="在小区东门往北五十米。")
            else:
                # Nobody answers: it waits, and after a while it is closed without more ado.
                add(
                    120,
                    240,
                    "close",
                    "supervisor",
                    closure=wf.NO_FURTHER_ACTION,
                    note="报告人未回复，按现有信息结案。",
                )
                return steps
        if stall or rng.random() < 0.7:
            # Small jobs are resolved straight from acceptance.
            add(0.2, 12, "start", "staff")
        if stall:
            return steps
        if rng.random() < 0.12:
            add(1, 20, "extend", "staff", hours=rng.choice((24, 48)), reason="需要协调施工队。")
            granted = rng.random() < 0.75
            add(0.5, 12, "approve" if granted else "deny", "supervisor")
        add(1, 60, "resolve", "staff", note="已处理完毕。")
        if rng.random() < 0.1:
            add(2, 48, "rework", "supervisor", note="现场复查未整改到位。")
            add(2, 36, "resolve", "staff", note="已重新整改。")
        if rng.random() < 0.35:
            add(1, 40, "confirm", "reporter", note="确认已修好，谢谢。")
        add(2, 72, "close", "supervisor", closure=wf.FIXED, note="核查通过，结案。")
        if rng.random() < 0.08:
            add(12, 140, "reopen", "reporter", reason="又出现了，没有根治。")
            add(0.5, 10, "accept", "staff")
            if rng.random() < 0.35:
                # A second look finds it was not this case's problem: its points go back.
                closure = rng.choice((wf.DUPLICATE, wf.INVALID))
                add(2, 48, "close", "supervisor", closure=closure, note=_CLOSE_NOTES[closure])
                return steps
            add(1, 20, "start", "staff")
            add(2, 48, "resolve", "staff", note="已彻底处理。")
            add(2, 48, "close", "supervisor", closure=wf.FIXED, note="复查通过，结案。")
        return steps

    def schedule(
        self, case: _PlannedCase, after: datetime, steps: list[tuple[timedelta, _Step]]
    ) -> datetime:
        """Queue the steps that happen before ``now``; answers when the case stops taking
        "me too" reports (it is resolved or closed), or ``now``."""
        at = after
        end_of_open = self.now
        for delay, step in steps:
            at = at + delay
            if at >= self.now - timedelta(minutes=1):
                break
            if step.kind in ("resolve", "close") and end_of_open == self.now:
                end_of_open = at
            self.enqueue(at, case, step)
        return end_of_open

    def enqueue(self, at: datetime, case: _PlannedCase | None, step: _Step) -> None:
        self.order += 1
        heapq.heappush(self.queue, _Queued(at, self.order, case, step))

    # ------------------------------------------------------------ playing

    def play(self) -> None:
        while self.queue:
            queued = heapq.heappop(self.queue)
            self.clock = queued.at
            if queued.step.kind == "sweep":
                self.sweep(queued.at)
                continue
            case = queued.case
            assert case is not None
            if case.off_plan:
                continue
            state = self.perform(case, queued.step, queued.at)
            if state is not None:
                self.watch_due(*state)
        self.clock = self.now
        self.sweep(self.now)

    def sweep(self, at: datetime) -> None:
        # As beat does: until one run finds nothing more.
        while escalation.escalate_overdue(self.session, at):
            pass

    def watch_due(self, status: str, due_at: datetime | None) -> None:
        """Beat's next look after the case's due time, when that is before ``now`` and the
        clock runs (a run that finds the case flagged already, or moved on, does nothing)."""
        if status not in CLOCK_RUNNING_STATUSES or due_at is None:
            return
        due = due_at if due_at.tzinfo else due_at.replace(tzinfo=UTC)
        # Beat looks once a minute: the first look after the due time.
        tick = due + SWEEP_INTERVAL - timedelta(microseconds=due.microsecond, seconds=due.second)
        if tick < self.now and tick not in self.sweeps:
            self.sweeps.add(tick)
            self.enqueue(tick, None, _Step("sweep"))

    def perform(
        self, case: _PlannedCase, step: _Step, at: datetime
    ) -> tuple[str, datetime | None] | None:
        """Do the step; the case's status and due time after it, when it has a case."""
        session = self.session
        if step.kind == "file":
            assert step.report is not None
            self.file(step.report)
            return None
        if step.kind == "process":
            assert step.report is not None and step.report.report_id is not None
            made = processing.process_report(
                session,
                step.report.report_id,
                classifier=self.classifier,  # type: ignore[arg-type]
                threshold=1.0,
                now=at,
            )
            if made is None:
                return None
            opened = made.opened_at == at
            if step.report is case.first:
                case.case_id = made.id
                # It joined an older case after all: that case's plan stands, not this one.
                case.off_plan = not opened
            elif made.id == case.case_id:
                self.merged += 1
            return made.status, made.due_at
        if case.case_id is None:
            return None
        found = session.get(Case, case.case_id)
        assert found is not None
        state = self.act(case, case.case_id, found, step, at)
        return None if state is None else (state.status, state.due_at)

    def act(
        self, planned: _PlannedCase, case_id: int, found: Case, step: _Step, at: datetime
    ) -> casework.CaseState | None:
        session = self.session
        args = step.args
        if step.kind in ("answer", "confirm", "reopen"):
            report_id = planned.first.report_id
            assert report_id is not None
            reporter = self.reporter_caller(planned.first.reporter)
            if step.kind == "answer":
                return casework.answer(session, report_id, reporter, args["text"], now=at)
            if step.kind == "confirm":
                return casework.confirm(session, report_id, reporter, args["note"], now=at)
            return casework.reopen(session, report_id, reporter, args["reason"], now=at)
        if step.role == "admin":
            caller = self.admin
        else:
            assert found.office is not None
            caller = self.office_caller(found.office, step.role)
        match step.kind:
            case "accept":
                return casework.accept(session, case_id, caller, now=at)
            case "start":
                return casework.start(session, case_id, caller, args.get("note", ""), now=at)
            case "ask":
                return casework.ask(session, case_id, caller, args["question"], now=at)
            case "extend":
                return casework.extend(
                    session, case_id, caller, args["hours"], args["reason"], now=at
                )
            case "approve":
                return casework.approve_extension(session, case_id, caller, "同意延期。", now=at)
            case "deny":
                return casework.deny_extension(session, case_id, caller, "请按时限完成。", now=at)
            case "resolve":
                photos = []
                if self.photo_store is not None:
                    photo = check_photos([after_photo_png(case_id)], 1, MAX_PHOTO_BYTES)[0]
                    self.photo_store.put(photo.sha256, photo.content_type, photo.data)
                    photos.append(photo)
                return casework.resolve(
                    session, case_id, caller, args["note"], photos=photos, now=at
                )
            case "rework":
                return casework.rework(session, case_id, caller, args["note"], now=at)
            case "close":
                return casework.close(
                    session,
                    case_id,
                    caller,
                    args["closure"],
                    args["note"],
                    now=at,
                    points_policy=self.policy,
                )
            case "transfer":
                target = self.transfer_target(found, args["to"])
                if target is None:
                    planned.off_plan = True
                    return None
                return casework.transfer(session, case_id, caller, target, args["reason"], now=at)
        raise ValueError(f"unknown demo step {step.kind!r}")

    def transfer_target(self, case: Case, to: str) -> str | None:
        if to == "parent":
            office = case.office
            return office.parent.code if office and office.parent else None
        # Placed by the desk: the office the routing would pick for the community named.
        containing = self.rng.choice(self.communities)
        handling = [c.code for c in containing.categories]
        if case.category_code in handling:
            return containing.code
        parent = containing.parent
        if parent is not None and case.category_code in [c.code for c in parent.categories]:
            return parent.code
        departments = self.session.scalars(
            select(Office).where(Office.kind == "department").order_by(Office.code)
        ).all()
        for office in departments:
            if case.category_code in [c.code for c in office.categories]:
                return office.code
        return parent.code if parent is not None else None

    def file(self, planned: _PlannedReport) -> None:
        # Filed at the simulated moment: ``stamping`` gives the report its received_at.
        report, _replayed = file_report(
            self.session,
            NewReport(
                reporter_id=planned.reporter,
                channel=planned.channel,
                text=planned.text,
                lat=planned.lat,
                lon=planned.lon,
                address=planned.address,
                category=planned.category,
                with_token=planned.channel == "open311",
                received_at=self.clock,
            ),
        )
        planned.report_id = report.id
        self.reports += 1

    # ------------------------------------------------------------ what it made

    def summary(self) -> DemoHistory:
        session = self.session
        by_status: Counter[str] = Counter()
        for status, closure, count in session.execute(
            select(Case.status, Case.closure, func.count()).group_by(Case.status, Case.closure)
        ):
            by_status[f"{status}:{closure}" if closure else status] += count
        overdue = session.scalar(
            select(func.count())
            .select_from(Case)
            .where(Case.overdue_at.is_not(None), Case.status.in_(CLOCK_RUNNING_STATUSES))
        )
        points = session.scalar(select(func.coalesce(func.sum(PointsEntry.points), 0)))
        return DemoHistory(
            True,
            cases=sum(by_status.values()),
            reports=self.reports,
            merged_reports=self.merged,
            reporters=len(self.reporters),
            by_status=dict(sorted(by_status.items())),
            overdue_now=int(overdue or 0),
            points=int(points or 0),
        )


_CLOSE_NOTES = {
    wf.INVALID: "现场核查无此问题。",
    wf.DUPLICATE: "与已受理案件重复。",
    wf.NOT_RESPONSIBLE: "不属本单位职责，已告知报告人向物业反映。",
    wf.NO_FURTHER_ACTION: "已协调，无需进一步处置。",
}


MAX_PHOTO_BYTES = 1 << 20
_PHOTO_SIZE = (240, 180)


def after_photo_png(seed: int) -> bytes:
    """A drawn after-photo (sky, a green verge, a clean grey pavement with its kerb), its
    colours varied by ``seed`` so no two cases share a file. Never a real person's photo."""
    width, height = _PHOTO_SIZE
    shade = seed * 37 % 40
    sky = bytes([150 + shade, 190 + shade // 2, 225]) * width
    verge = bytes([60 + shade, 140 + shade, 70]) * width
    kerb = bytes([200, 200, 195]) * width
    pavement = bytes([110 + shade, 112 + shade, 118 + shade]) * width
    rows = []
    for y in range(height):
        if y < height * 2 // 5:
            row = sky
        elif y < height // 2:
            row = verge
        elif y < height // 2 + 4:
            row = kerb
        else:
            row = pavement
        rows.append(b"\x00" + row)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(b"".join(rows), 6))
        + _png_chunk(b"IEND", b"")
    )


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
