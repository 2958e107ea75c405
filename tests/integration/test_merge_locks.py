"""'Me too' under concurrency: two workers processing reports of one problem at the same moment
open one case, also when the two reports lie in different map cells on either side of a border;
reports of one category in different parts of the city do not wait for each other; a change of
a category's merge radius waits for the searches that are running.

Real connections on the run's database, as the workers have. The waiting is shown by state (a
thread still running and its report still unprocessed, or a lock timeout's error), never by a
clock."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from models.entities import Case, Category, Report
from models.session import make_engine, make_session_factory, unit_of_work
from routing.classify import default_classifier
from routing.merge import bounding_box, cell_height_deg, cell_of, cell_width_deg, cells_touched
from services.processing import (
    MeTooSearch,
    cell_lock_key,
    open_cases_nearby,
    process_report,
)
from services.rules import set_merge_settings
from tests.factories import DEFAULT_THRESHOLD, make_report, process
from tests.helpers import sample_point

CATEGORY = "bin_overflow"
POINT = sample_point()
# Another community's sample point, about 2.8 km away.
FAR = sample_point("PD-HG-02")
METRES_PER_DEGREE = 111_195
ROUNDS = 6
# A worker of these tests gives up waiting for a lock after this long (it never should have to,
# unless the locks are wrong): what turns "it would wait" into an error a test can see.
IMPATIENT_LOCK_TIMEOUT_S = 1.0
WAIT_FOR_THREAD_S = 60


@pytest.fixture
def postgresql_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: there is nothing to lock")


@pytest.fixture
def impatient(database_url: str) -> Iterator[sessionmaker[Session]]:
    engine: Engine = make_engine(database_url, lock_timeout=IMPATIENT_LOCK_TIMEOUT_S)
    yield make_session_factory(engine, writer=True)
    engine.dispose()


def radius_m(sessions: sessionmaker[Session]) -> float:
    with sessions() as session:
        radius = session.scalar(select(Category.merge_radius_m).where(Category.code == CATEGORY))
    assert radius is not None
    return radius


def moved(lat: float, lon: float, north_m: float = 0.0, east_m: float = 0.0) -> dict[str, float]:
    return {
        "lat": lat + north_m / METRES_PER_DEGREE,
        "lon": lon + east_m / (METRES_PER_DEGREE * math.cos(math.radians(lat))),
    }


def straddling(radius: float, direction: str, step: int) -> tuple[dict[str, float], ...]:
    """Two points 20 m apart on either side of a cell border near the sample point: a row
    border (one south of it, one north) or a column border (one west, one east); ``step`` moves
    the pair 500 m away along the other axis, into cells no other pair touches."""
    if direction == "north_south":
        start = moved(POINT["lat"], POINT["lon"], east_m=500 * step)
        row, _column = cell_of(start["lat"], start["lon"], radius)
        border = (row + 1) * cell_height_deg(radius)
        pair = (moved(border, start["lon"], north_m=-10), moved(border, start["lon"], north_m=10))
    else:
        start = moved(POINT["lat"], POINT["lon"], north_m=-500 * step)
        row, column = cell_of(start["lat"], start["lon"], radius)
        border = (column + 1) * cell_width_deg(row, radius) - 180.0
        # in the middle of the row, so that both points lie in it
        middle = (row + 0.5) * cell_height_deg(radius)
        pair = (moved(middle, border, east_m=-10), moved(middle, border, east_m=10))
    first, second = pair
    assert cell_of(first["lat"], first["lon"], radius) != cell_of(
        second["lat"], second["lon"], radius
    ), "the two reports must lie in different cells"
    return pair


def cases_of(engine: Engine, *report_ids: int) -> set[int | None]:
    with make_session_factory(engine)() as session:
        return set(session.scalars(select(Report.case_id).where(Report.id.in_(report_ids))))


def state_of(engine: Engine, report_id: int) -> str:
    # A reader: on SQLite it reads past the writer that holds the database.
    with make_session_factory(engine)() as session:
        report = session.get(Report, report_id)
        assert report is not None
        return report.state


def test_straddling_pairs_share_a_lock_but_lie_in_different_cells(sessions) -> None:
    radius = radius_m(sessions)
    for direction in ("north_south", "east_west"):
        first, second = straddling(radius, direction, 0)
        shared = set(cells_touched(bounding_box(first["lat"], first["lon"], radius), radius))
        shared &= set(cells_touched(bounding_box(second["lat"], second["lon"], radius), radius))
        assert shared, direction


@pytest.mark.committed  # two workers are two connections: each must see the other's commit
@pytest.mark.parametrize("direction", ["north_south", "east_west"])
def test_reports_of_one_problem_across_a_cell_border_wait_and_join(
    engine, sessions, direction
) -> None:
    # The first worker is in the middle of opening a case, just across a cell border from the
    # second report: the second worker must wait for that commit and join the case.
    first_point, second_point = straddling(radius_m(sessions), direction, 0)
    first_id = make_report(sessions, no_merge=False, **first_point)
    second_id = make_report(sessions, no_merge=False, text="这里垃圾桶满了", **second_point)
    second: list[Case | None] = []
    with unit_of_work(sessions) as session:
        first = process_report(
            session, first_id, classifier=default_classifier(), threshold=DEFAULT_THRESHOLD
        )
        assert first is not None
        session.flush()
        first_case_id = first.id
        other_worker = threading.Thread(target=lambda: second.append(process(sessions, second_id)))
        other_worker.start()
        other_worker.join(timeout=0.5)
        assert other_worker.is_alive(), "the second report did not wait for the first case"
        assert state_of(engine, second_id) == "received"
    other_worker.join(timeout=WAIT_FOR_THREAD_S)
    assert not other_worker.is_alive()
    assert second and second[0] is not None and second[0].id == first_case_id
    assert cases_of(engine, first_id, second_id) == {first_case_id}


@pytest.mark.committed
@pytest.mark.parametrize("direction", ["north_south", "east_west"])
def test_reports_across_a_cell_border_processed_at_once_open_one_case(
    engine, sessions, direction
) -> None:
    # Two workers released together, round after round, each pair in cells of its own.
    radius = radius_m(sessions)
    for step in range(ROUNDS):
        pair = straddling(radius, direction, step + 1)
        report_ids = [make_report(sessions, no_merge=False, **point) for point in pair]
        errors = at_once(sessions, report_ids)
        assert not errors, errors
        found = cases_of(engine, *report_ids)
        assert len(found) == 1 and None not in found, (step, found)


def at_once(sessions: sessionmaker[Session], report_ids: list[int]) -> list[BaseException]:
    """Each report processed by a worker of its own, the workers released together; what they
    raised."""
    barrier = threading.Barrier(len(report_ids))
    errors: list[BaseException] = []

    def work(report_id: int) -> None:
        try:
            barrier.wait()
            process(sessions, report_id)
        except BaseException as error:  # the caller asserts there was none
            errors.append(error)

    workers = [threading.Thread(target=work, args=(r,)) for r in report_ids]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=WAIT_FOR_THREAD_S)
    assert not any(worker.is_alive() for worker in workers)
    return errors


@pytest.mark.committed
def test_a_report_waits_only_for_the_cells_its_search_touches(
    postgresql_only, engine, sessions, impatient
) -> None:
    # Another transaction holds the lock of the sample point's cell, as a worker does from its
    # search until it commits the case it opened there. A report of the same category at the
    # other end of the city goes through; one 20 m from the sample point waits (here: gives up
    # after the lock timeout, and stays unprocessed), and goes through once the lock is gone.
    radius = radius_m(sessions)
    near = moved(POINT["lat"], POINT["lon"], north_m=20)
    near_id = make_report(sessions, no_merge=False, **near)
    far_id = make_report(sessions, no_merge=False, lat=FAR["lat"], lon=FAR["lon"])
    held_cell = cell_of(POINT["lat"], POINT["lon"], radius)
    assert held_cell in cells_touched(bounding_box(near["lat"], near["lon"], radius), radius)
    assert held_cell not in cells_touched(bounding_box(FAR["lat"], FAR["lon"], radius), radius)
    with engine.connect() as holder, holder.begin():
        holder.execute(select(func.pg_advisory_xact_lock(cell_lock_key(CATEGORY, held_cell))))

        far_case = process(impatient, far_id)
        assert far_case is not None and state_of(engine, far_id) == "processed"
        with pytest.raises(OperationalError, match="lock timeout"):
            process(impatient, near_id)
        assert state_of(engine, near_id) == "received"
    near_case = process(impatient, near_id)
    assert near_case is not None and near_case.id != far_case.id
    assert state_of(engine, near_id) == "processed"


@pytest.mark.committed
def test_a_merge_radius_change_waits_for_running_searches(
    postgresql_only, sessions, impatient
) -> None:
    # Workers draw their cells from the radius: a change must not land between two of them.
    radius = radius_m(sessions)
    with sessions() as session:
        hours = session.scalar(select(Category.merge_window_hours).where(Category.code == CATEGORY))
    held_id = make_report(sessions, no_merge=False, **moved(POINT["lat"], POINT["lon"], -900))
    with unit_of_work(sessions) as holding:
        assert (
            process_report(
                holding, held_id, classifier=default_classifier(), threshold=DEFAULT_THRESHOLD
            )
            is not None
        )
        with (
            pytest.raises(OperationalError, match="lock timeout"),
            unit_of_work(impatient) as admin,
        ):
            set_merge_settings(admin, CATEGORY, radius * 2, hours)
    with impatient() as session:
        assert (
            session.scalar(select(Category.merge_radius_m).where(Category.code == CATEGORY))
            == radius
        )
    # with no search running it goes through (the same values: the run's other tests need them)
    with unit_of_work(impatient) as admin:
        assert set_merge_settings(admin, CATEGORY, radius, hours).radius_m == radius


def test_the_search_reads_the_open_cases_index(database_url: str, db: Session) -> None:
    # What the query planner does with the search: the partial index of open cases answers it,
    # reading no table row (SQLite's COVERING INDEX; PostgreSQL's Index Only Scan).
    search = MeTooSearch(
        CATEGORY, 50.0, timedelta(hours=24), bounding_box(POINT["lat"], POINT["lon"], 50.0)
    )
    statements: list[tuple[str, object]] = []
    connection = db.connection()

    def grab(_conn, _cursor, statement, parameters, _context, _many) -> None:  # type: ignore[no-untyped-def]
        statements.append((statement, parameters))

    event.listen(connection, "before_cursor_execute", grab)
    try:
        assert open_cases_nearby(db, search, datetime.now(UTC)) == []
    finally:
        event.remove(connection, "before_cursor_execute", grab)
    statement, parameters = statements[-1]
    assert "JOIN" not in statement.upper() and "GROUP BY" not in statement.upper()
    if database_url.startswith("postgresql"):
        # the test database is small enough for a scan of the table to be cheaper
        connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
        assert "Index Only Scan using ix_cases_open_nearby" in "\n".join(plan), plan
    else:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
        assert "COVERING INDEX ix_cases_open_nearby" in str(plan), plan
