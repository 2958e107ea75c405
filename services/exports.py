"""The case list as CSV (GET /api/v1/cases.csv): written at once when it is small, by a task
into a file the requester polls for when it is not. One row per case from ``case_stats``;
never a name: the first reporter is named by occupation only."""

from __future__ import annotations

import csv
import io
import os
import secrets
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from models.entities import CaseStat, Export, Office
from models.session import enqueue_after_commit
from services.errors import Conflict, NotFound
from services.statistics import StatsQuery, case_filters

EXPORT_CASES = "cityrelay.export_cases"
CASES = "cases"
# The columns of the case list, in order.
CASES_CSV_COLUMNS = (
    "id",
    "category",
    "office",
    "reported",
    "accepted",
    "resolved",
    "closed",
    "closure",
    "due",
    "on_time",
    "rework_count",
    "reports_in_case",
    "channel",
    "first_reporter_occupation",
)
# The same request again this soon (a retry on a bad network) gets the export already made.
SAME_REQUEST_WINDOW = timedelta(minutes=10)
_BATCH = 2000


def count_cases(session: Session, query: StatsQuery) -> int:
    return (
        session.scalar(select(func.count()).select_from(CaseStat).where(*case_filters(query))) or 0
    )


def case_lines(session: Session, query: StatsQuery) -> Iterator[str]:
    """The CSV text, header first, a batch of lines at a time."""
    zone = ZoneInfo(query.time_zone)

    def moment(value: datetime | None) -> str:
        return "" if value is None else value.astimezone(zone).isoformat(timespec="seconds")

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CASES_CSV_COLUMNS)
    statement = (
        select(CaseStat, Office.code)
        .outerjoin(Office, Office.id == CaseStat.office_id)
        .where(*case_filters(query))
        .order_by(CaseStat.case_id)
        .execution_options(yield_per=_BATCH)
    )
    for number, (row, office) in enumerate(session.execute(statement), start=1):
        closed = row.closed_at is not None
        writer.writerow(
            [
                row.case_id,
                row.category_code or "",
                office or "",
                moment(row.reported_at),
                moment(row.accepted_at),
                moment(row.resolved_at),
                moment(row.closed_at),
                row.closure or "",
                moment(row.due_at),
                ("true" if row.closed_on_time else "false") if closed else "",
                row.rework_count,
                row.reports_count,
                row.channel,
                row.occupation,
            ]
        )
        if number % _BATCH == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def query_params(query: StatsQuery) -> dict[str, Any]:
    return {
        "date_from": query.date_from.isoformat(),
        "date_to": query.date_to.isoformat(),
        "time_zone": query.time_zone,
        "office_ids": sorted(query.office_ids) if query.office_ids is not None else None,
        "category": query.category,
        "group": query.group,
        "occupation": query.occupation,
        "channel": query.channel,
    }


def query_of(params: dict[str, Any]) -> StatsQuery:
    offices = params["office_ids"]
    return StatsQuery(
        date_from=date.fromisoformat(params["date_from"]),
        date_to=date.fromisoformat(params["date_to"]),
        time_zone=params["time_zone"],
        office_ids=frozenset(offices) if offices is not None else None,
        category=params["category"],
        group=params["group"],
        occupation=params["occupation"],
        channel=params["channel"],
    )


def request_export(session: Session, query: StatsQuery, requested_by: str, now: datetime) -> Export:
    """An export of the case list for ``requested_by``, written by a task after the commit;
    the same request again within ``SAME_REQUEST_WINDOW`` gets the one already asked for."""
    params = query_params(query)
    recent = session.scalars(
        select(Export)
        .where(
            Export.requested_by == requested_by,
            Export.kind == CASES,
            Export.status != "failed",
            Export.created_at >= now - SAME_REQUEST_WINDOW,
        )
        .order_by(Export.id.desc())
    ).all()
    for earlier in recent:
        if earlier.params == params:
            return earlier
    export = Export(
        kind=CASES, params=params, requested_by=requested_by, status="pending", created_at=now
    )
    session.add(export)
    session.flush()
    enqueue_after_commit(session, EXPORT_CASES, export.id)
    return export


def write_export(session: Session, export_id: int, directory: str, now: datetime) -> str:
    """Write the export's file and mark it done; nothing when it is done or gone already. The
    file appears under its final name only once complete."""
    export = session.scalar(select(Export).where(Export.id == export_id).with_for_update())
    if export is None or export.status in ("done", "failed"):
        return "nothing to do"
    os.makedirs(directory, exist_ok=True)
    filename = export.filename or f"cases-{export.id}-{secrets.token_hex(8)}.csv"
    path = os.path.join(directory, filename)
    partial = f"{path}.partial"
    rows = 0
    with open(partial, "w", encoding="utf-8", newline="") as out:
        for chunk in case_lines(session, query_of(export.params)):
            out.write(chunk)
            rows += chunk.count("\r\n")
    os.replace(partial, path)
    export.status, export.rows, export.filename, export.finished_at = (
        "done",
        rows - 1,
        filename,
        now,
    )
    return f"export {export.id}: {rows - 1} rows"


def fail_export(session: Session, export_id: int, error: str, now: datetime) -> None:
    session.execute(
        update(Export)
        .where(Export.id == export_id, Export.status == "pending")
        .values(status="failed", error=error[:2000], finished_at=now)
    )


def requeue_stuck(session: Session, stale_after: timedelta, now: datetime) -> list[int]:
    """Enqueue again the exports still pending well after they were asked for (or last
    enqueued): a lost message, or a worker that died mid-way."""
    stuck = session.scalars(
        select(Export)
        .where(
            Export.status == "pending",
            Export.created_at < now - stale_after,
            (Export.last_enqueued_at.is_(None)) | (Export.last_enqueued_at < now - stale_after),
        )
        .order_by(Export.id)
        .limit(100)
        .with_for_update(skip_locked=True)
    ).all()
    for export in stuck:
        export.last_enqueued_at = now
        enqueue_after_commit(session, EXPORT_CASES, export.id)
    return [export.id for export in stuck]


def export_for(session: Session, export_id: int, requested_by: str, *, admin: bool) -> Export:
    """The export, for whoever asked for it (or an admin); NotFound for anyone else, so an
    export's existence says nothing to them."""
    export = session.get(Export, export_id)
    if export is None or not (admin or export.requested_by == requested_by):
        raise NotFound(f"No export {export_id}.")
    return export


def ready_file(export: Export, directory: str) -> str:
    """The path of a finished export's file; Conflict while it is being written."""
    if export.status != "done" or export.filename is None:
        raise Conflict(
            f"Export {export.id} is {export.status}, not ready to download.",
            "export_not_ready",
            {"status": export.status},
        )
    path = os.path.join(directory, export.filename)
    if not os.path.exists(path):
        raise NotFound(f"The file of export {export.id} is gone.")
    return path
