"""The case list as CSV (GET /api/v1/cases.csv): written at once when it is small, by a task
into the database when it is not, for the requester to poll for and download through any web
machine. One row per case from ``case_stats``; never a name: the first reporter is named by
occupation only.

An export's file is stored as ``export_chunks`` rows of about ``CHUNK_BYTES``, keyed by the
offset of their first byte: the task that writes it and a download that reads it each hold one
piece in memory, however many cases the list has (``ExportFile``)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import exists, func, insert, select, update
from sqlalchemy.orm import Session

from models.entities import CaseStat, Export, ExportChunk, Office
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
# The size of the pieces an export's file is stored in (each piece is this or a batch of lines
# more): large enough that a million-line list (some 180 MiB) is under two hundred queries,
# small enough to hold one in memory per download.
CHUNK_BYTES = 1024 * 1024


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


def write_export(session: Session, export_id: int, now: datetime) -> str:
    """Store the export's file and mark it done, in the session's transaction: the file and the
    ``done`` commit together, or neither does. Nothing when the export is done or gone already
    (a rerun); the row lock makes a second run wait for the first, then find it done."""
    export = session.scalar(select(Export).where(Export.id == export_id).with_for_update())
    if export is None or export.status in ("done", "failed"):
        return "nothing to do"
    size = 0
    lines = 0
    piece = bytearray()
    for text in case_lines(session, query_of(export.params)):
        lines += text.count("\r\n")
        piece += text.encode("utf-8")
        if len(piece) >= CHUNK_BYTES:
            _store_chunk(session, export.id, size, piece)
            size += len(piece)
            piece.clear()
    if piece or size == 0:
        _store_chunk(session, export.id, size, piece)
        size += len(piece)
    export.status, export.rows, export.size_bytes, export.finished_at = (
        "done",
        lines - 1,
        size,
        now,
    )
    return f"export {export.id}: {lines - 1} rows, {size} bytes"


def _store_chunk(session: Session, export_id: int, start: int, data: bytearray) -> None:
    # A Core insert, not an ORM object: the session would keep every piece until the commit.
    session.execute(insert(ExportChunk).values(export_id=export_id, start=start, data=bytes(data)))


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


def ready_export(session: Session, export: Export) -> int:
    """The length of a finished export's stored file; Conflict while it is being written,
    NotFound when it has no stored file (finished before exports were stored in the database,
    or its pieces deleted)."""
    if export.status != "done":
        raise Conflict(
            f"Export {export.id} is {export.status}, not ready to download.",
            "export_not_ready",
            {"status": export.status},
        )
    if export.size_bytes is None or not session.scalar(
        select(exists().where(ExportChunk.export_id == export.id, ExportChunk.start == 0))
    ):
        raise NotFound(f"The file of export {export.id} is gone.")
    return export.size_bytes


def chunk_at(session: Session, export_id: int, offset: int) -> tuple[int, bytes] | None:
    """The stored piece of the export's file that holds byte ``offset``, with the offset it
    starts at; None past the last piece."""
    row = session.execute(
        select(ExportChunk.start, ExportChunk.data)
        .where(ExportChunk.export_id == export_id, ExportChunk.start <= offset)
        .order_by(ExportChunk.start.desc())
        .limit(1)
    ).one_or_none()
    if row is None or offset >= row.start + len(row.data):
        return None
    return row.start, row.data


# Reads the piece that holds a given byte (``chunk_at`` in a session of the caller's choosing).
ChunkReader = Callable[[int], tuple[int, bytes] | None]


class ExportFile(io.RawIOBase):
    """A stored export's file as a read-only, seekable binary file of ``size`` bytes, reading one
    piece at a time through ``read_chunk``: what a web server streams, and what a Range request
    seeks in. A piece missing mid-way (deleted under the download) is an OSError."""

    def __init__(self, read_chunk: ChunkReader, size: int) -> None:
        super().__init__()
        self._read_chunk = read_chunk
        self._size = size
        self._position = 0
        self._chunk_start = 0
        self._chunk = b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        if base + offset < 0:
            raise ValueError(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def readinto(self, buffer: Any) -> int:
        # Fills the buffer across pieces: a read is short only at the end of the file.
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view) and self._position < self._size:
            within = self._position - self._chunk_start
            if not 0 <= within < len(self._chunk):
                self._chunk_start, self._chunk = self._read_chunk(self._position) or (0, b"")
                within = self._position - self._chunk_start
                if not 0 <= within < len(self._chunk):
                    raise OSError(f"the stored export has no byte {self._position}")
            count = min(len(view) - filled, len(self._chunk) - within, self._size - self._position)
            view[filled : filled + count] = self._chunk[within : within + count]
            filled += count
            self._position += count
        return filled
