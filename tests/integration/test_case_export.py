"""GET /api/v1/cases.csv: the case list with its named columns, no names of people, the
statistics' filters and refusals; beyond EXPORT_SYNC_MAX_ROWS a 202 with an export to poll,
written into the database as the worker writes it (in pieces, with its ``done`` in one commit),
downloaded with the headers, ranges and revalidation a file had, readable only by whoever asked
(or an admin), the same export for the same request again, and the sweep picking up an export
whose message was lost."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from models.base import utcnow
from models.entities import Export, ExportChunk
from models.session import unit_of_work
from services import exports
from tests.factories import make_case, make_key, make_reporter
from tests.helpers import sample_point

POINT = sample_point()
OFFICE = POINT["office"]
STREET = "PD-CJ"
CASES_CSV = "/api/v1/cases.csv"
COLUMNS = [
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
]


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@pytest.fixture
def admin(sessions: sessionmaker[Session]) -> dict[str, str]:
    return bearer(make_key(sessions, role="admin"))


@pytest.fixture
def supervisor(sessions: sessionmaker[Session]) -> dict[str, str]:
    return bearer(make_key(sessions, role="supervisor", office_code=STREET))


@pytest.fixture
def staff(sessions: sessionmaker[Session]) -> dict[str, str]:
    return bearer(make_key(sessions, role="office", office_code=OFFICE))


def lines(response: Any) -> list[dict[str, str]]:
    text = response.get_data(as_text=True)
    assert text.splitlines()[0].split(",") == COLUMNS
    return list(csv.DictReader(io.StringIO(text)))


def act(client: FlaskClient, case_id: int, action: str, key: dict[str, str], **body: Any) -> None:
    response = client.post(f"/api/v1/cases/{case_id}/{action}", json=body, headers=key)
    assert response.status_code == 200, response.get_json()


def test_the_case_list_with_its_columns_and_no_names(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    supervisor: dict[str, str],
    staff: dict[str, str],
) -> None:
    reporter_id, _key = make_reporter(sessions, display_name="外卖小哥赵六", occupation="rider")
    closed = make_case(sessions, reporter_id=reporter_id)
    open_case = make_case(sessions)
    act(client, closed.id, "accept", staff)
    act(client, closed.id, "resolve", staff, note="已清运")
    act(client, closed.id, "close", supervisor, closure="fixed", note="结案")

    response = client.get(CASES_CSV, headers=supervisor)
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert "外卖小哥赵六" not in response.get_data(as_text=True)
    rows = {int(row["id"]): row for row in lines(response)}
    assert {closed.id, open_case.id} <= set(rows)
    line = rows[closed.id]
    assert line["office"] == OFFICE and line["category"] == closed.category_code
    assert line["closure"] == "fixed" and line["on_time"] == "true"
    assert line["reported"].endswith("+08:00") and line["accepted"] and line["resolved"]
    assert line["rework_count"] == "0" and line["reports_in_case"] == "1"
    assert line["channel"] == "api" and line["first_reporter_occupation"] == "rider"
    unfinished = rows[open_case.id]
    assert (
        unfinished["closed"] == "" and unfinished["on_time"] == "" and unfinished["closure"] == ""
    )
    # as many lines as /api/v1/stats counts cases, for the same selection
    figures = client.get("/api/v1/stats", headers=supervisor).get_json()
    assert len(rows) == figures["cases"]


def test_the_case_list_takes_the_statistics_filters_and_refusals(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    admin: dict[str, str],
    supervisor: dict[str, str],
    staff: dict[str, str],
) -> None:
    case = make_case(sessions)
    elsewhere = client.get(CASES_CSV, query_string={"office": "PD-HG"}, headers=admin)
    assert case.id not in {int(r["id"]) for r in lines(elsewhere)}
    assert client.get(CASES_CSV).status_code == 401
    assert client.get(CASES_CSV, headers=staff).status_code == 403
    assert (
        client.get(CASES_CSV, query_string={"office": "PD-HG"}, headers=supervisor).status_code
        == 403
    )
    for params, field in (
        ({"group_by": "office"}, "group_by"),
        ({"to": "2026-13-40"}, "to"),
        ({"category": "unknown_thing"}, "category"),
    ):
        bad = client.get(CASES_CSV, query_string=params, headers=admin)
        assert bad.status_code == 422 and field in bad.get_json()["error"]["fields"]


def test_a_large_list_is_an_export_to_poll(
    make_app: Any,
    sessions: sessionmaker[Session],
    app: Flask,
    supervisor: dict[str, str],
    admin: dict[str, str],
) -> None:
    for _ in range(3):
        make_case(sessions)
    small = make_app(EXPORT_SYNC_MAX_ROWS=2)
    client = small.test_client()
    asked = client.get(CASES_CSV, headers=supervisor)
    assert asked.status_code == 202
    body = asked.get_json()
    assert body["status"] == "pending" and body["download_url"] is None
    assert asked.headers["Location"] == body["url"]
    # a retry of the same request is the same export, not a second one
    assert client.get(CASES_CSV, headers=supervisor).get_json()["id"] == body["id"]
    path = f"/api/v1/exports/{body['id']}"
    assert client.get(path, headers=supervisor).get_json()["status"] == "pending"
    not_ready = client.get(path + "/download", headers=supervisor)
    assert not_ready.status_code == 409
    assert not_ready.get_json()["error"]["code"] == "export_not_ready"
    # another supervisor learns nothing of it; an admin may read it
    stranger = bearer(make_key(sessions, role="supervisor", office_code=STREET))
    assert client.get(path, headers=stranger).status_code == 404
    assert client.get(path, headers=admin).status_code == 200

    with unit_of_work(sessions) as session:  # what the worker's task does
        assert exports.write_export(session, body["id"], utcnow()) != "nothing to do"
    stored = stored_chunks(sessions, body["id"])
    with unit_of_work(sessions) as session:  # a rerun does nothing
        assert exports.write_export(session, body["id"], utcnow()) == "nothing to do"
    assert stored_chunks(sessions, body["id"]) == stored == 1
    done = client.get(path, headers=supervisor).get_json()
    assert done["status"] == "done" and done["download_url"].endswith("/download")
    download = client.get(path + "/download", headers=supervisor)
    assert download.status_code == 200 and download.mimetype == "text/csv"
    exported = download.get_data(as_text=True)
    download.close()
    at_once = app.test_client().get(CASES_CSV, headers=supervisor).get_data(as_text=True)
    assert exported == at_once
    assert done["rows"] == len(exported.splitlines()) - 1 >= 3
    # an admin downloads it too; the stranger does not
    assert client.get(path + "/download", headers=admin).status_code == 200
    assert client.get(path + "/download", headers=stranger).status_code == 404


def stored_chunks(sessions: sessionmaker[Session], export_id: int) -> int:
    with unit_of_work(sessions) as session:
        return session.scalar(
            select(func.count()).select_from(ExportChunk).where(ExportChunk.export_id == export_id)
        )


def asked_export(make_app: Any, supervisor: dict[str, str]) -> tuple[FlaskClient, int]:
    """An export of the case list (over a one-line limit), not yet written."""
    client = make_app(EXPORT_SYNC_MAX_ROWS=1).test_client()
    asked = client.get(CASES_CSV, headers=supervisor)
    assert asked.status_code == 202
    return client, asked.get_json()["id"]


def test_a_long_export_is_stored_in_pieces_and_read_back_whole(
    make_app: Any,
    sessions: sessionmaker[Session],
    app: Flask,
    supervisor: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for _ in range(3):
        make_case(sessions)
    # a piece per line or so, so that a few cases make several
    monkeypatch.setattr(exports, "CHUNK_BYTES", 50)
    monkeypatch.setattr(exports, "_BATCH", 1)
    client, export_id = asked_export(make_app, supervisor)
    with unit_of_work(sessions) as session:
        exports.write_export(session, export_id, utcnow())
    at_once = app.test_client().get(CASES_CSV, headers=supervisor).get_data()
    with unit_of_work(sessions) as session:
        export = session.get(Export, export_id)
        assert export is not None and export.size_bytes == len(at_once)
        starts = session.scalars(
            select(ExportChunk.start)
            .where(ExportChunk.export_id == export_id)
            .order_by(ExportChunk.start)
        ).all()
    assert len(starts) >= 3 and starts[0] == 0

    url = f"/api/v1/exports/{export_id}/download"
    download = client.get(url, headers=supervisor)
    assert download.get_data() == at_once
    download.close()
    # a range across a piece's end, and one that begins inside the last piece
    across = f"bytes={starts[1] - 10}-{starts[2] + 9}"
    part = client.get(url, headers={**supervisor, "Range": across})
    assert part.status_code == 206
    assert part.headers["Content-Range"] == f"{across.replace('=', ' ')}/{len(at_once)}"
    assert part.get_data() == at_once[starts[1] - 10 : starts[2] + 10]
    part.close()
    tail = client.get(url, headers={**supervisor, "Range": f"bytes={starts[-1] + 1}-"})
    assert tail.status_code == 206 and tail.get_data() == at_once[starts[-1] + 1 :]
    tail.close()


def test_the_download_answers_as_a_file_did(
    make_app: Any, sessions: sessionmaker[Session], supervisor: dict[str, str]
) -> None:
    make_case(sessions)
    make_case(sessions)
    client, export_id = asked_export(make_app, supervisor)
    with unit_of_work(sessions) as session:
        exports.write_export(session, export_id, utcnow())
    url = f"/api/v1/exports/{export_id}/download"
    full = client.get(url, headers=supervisor)
    body = full.get_data()
    full.close()
    assert full.status_code == 200
    assert full.headers["Content-Type"] == "text/csv; charset=utf-8"
    assert full.headers["Content-Disposition"] == (
        f"attachment; filename=cityrelay-cases-export-{export_id}.csv"
    )
    assert full.headers["Content-Length"] == str(len(body))
    assert full.headers["Accept-Ranges"] == "bytes"
    assert full.headers["Cache-Control"] == "no-cache"
    assert full.headers["Last-Modified"] and full.headers["ETag"]
    assert body.startswith(b"id,category,office,")

    head = client.head(url, headers=supervisor)
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(body))
    head.close()
    again = client.get(url, headers={**supervisor, "If-None-Match": full.headers["ETag"]})
    assert again.status_code == 304 and again.get_data() == b""
    again.close()
    first = client.get(url, headers={**supervisor, "Range": "bytes=0-9"})
    assert first.status_code == 206 and first.get_data() == body[:10]
    first.close()
    past = client.get(url, headers={**supervisor, "Range": f"bytes={len(body)}-"})
    assert past.status_code == 416
    past.close()


def test_the_file_and_its_done_commit_together(
    make_app: Any, sessions: sessionmaker[Session], supervisor: dict[str, str]
) -> None:
    make_case(sessions)
    make_case(sessions)
    client, export_id = asked_export(make_app, supervisor)
    with pytest.raises(RuntimeError), unit_of_work(sessions) as session:
        exports.write_export(session, export_id, utcnow())
        raise RuntimeError("the task's unit of work fails after the file is written")
    assert stored_chunks(sessions, export_id) == 0
    path = f"/api/v1/exports/{export_id}"
    assert client.get(path, headers=supervisor).get_json()["status"] == "pending"
    assert client.get(path + "/download", headers=supervisor).status_code == 409


def test_a_done_export_without_its_stored_file_is_gone(
    make_app: Any, sessions: sessionmaker[Session], supervisor: dict[str, str]
) -> None:
    make_case(sessions)
    make_case(sessions)
    client, export_id = asked_export(make_app, supervisor)
    # as an export finished before exports were stored in the database is after migrating
    with unit_of_work(sessions) as session:
        session.execute(
            update(Export)
            .where(Export.id == export_id)
            .values(status="done", rows=2, finished_at=utcnow())
        )
    answer = client.get(f"/api/v1/exports/{export_id}/download", headers=supervisor)
    assert answer.status_code == 404 and answer.get_json()["error"]["code"] == "not_found"


def test_the_sweep_enqueues_an_export_whose_message_was_lost(
    sessions: sessionmaker[Session],
) -> None:
    now = utcnow()
    with unit_of_work(sessions) as session:
        export = Export(
            kind="cases", params={}, requested_by="key:1", status="pending", created_at=now
        )
        session.add(export)
        session.flush()
        export_id = export.id
    with unit_of_work(sessions) as session:
        assert export_id not in exports.requeue_stuck(session, timedelta(seconds=60), now)
    with unit_of_work(sessions) as session:
        session.execute(
            update(Export)
            .where(Export.id == export_id)
            .values(created_at=now - timedelta(minutes=5))
        )
    with unit_of_work(sessions) as session:
        assert export_id in exports.requeue_stuck(session, timedelta(seconds=60), now)
    with unit_of_work(sessions) as session:  # just enqueued: not again at once
        assert export_id not in exports.requeue_stuck(session, timedelta(seconds=60), now)
