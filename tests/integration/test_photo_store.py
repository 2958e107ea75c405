"""Where photos are kept: the database (``photo_blobs``, the default, which every web machine
reads) or a shared folder (``PHOTO_STORE=directory``). Both stores keep a photo once by its
SHA-256; in the database a photo commits with the report or resolution that names it, or not at
all, and two transactions storing one photo at once (PostgreSQL) both succeed with one row.
/media serves from either with the same headers, caches for a year (the name is the content's
hash) and answers a revalidation 304. `cityrelay import-media` copies a media folder's photos
into the database."""

from __future__ import annotations

import hashlib
import io
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.cli import main
from models.entities import PhotoBlob
from models.session import unit_of_work
from services.photo_store import (
    DatabasePhotoStore,
    DirectoryPhotoStore,
    PhotoStore,
    photo_name,
    store_photos,
)
from services.photos import UploadedPhoto, check_photos
from tests.factories import make_case, make_key
from tests.helpers import open311_errors, sample_point, tiny_png, wait_for

POINT = sample_point()
OFFICE = POINT["office"]
MAX_BYTES = 10 * 1024 * 1024
LOCK_WAIT_TIMEOUT_S = 15
THREAD_TIMEOUT_S = 30


def cleaned(seed: int) -> UploadedPhoto:
    """``tiny_png(seed)`` as an upload stores it (re-encoding is deterministic)."""
    return check_photos([tiny_png(seed)], 1, MAX_BYTES)[0]


def blob_count(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(PhotoBlob)) or 0


def blob_names(db: Session) -> set[str]:
    db.expire_all()
    rows = db.execute(select(PhotoBlob.sha256, PhotoBlob.content_type)).all()
    return {photo_name(sha256, content_type) for sha256, content_type in rows}


def post_report(client: FlaskClient, key: str, photos: list[bytes], **fields: Any) -> Any:
    data: dict[str, Any] = {
        "text": "垃圾桶满了",
        "lat": str(POINT["lat"]),
        "lon": str(POINT["lon"]),
    }
    data.update({name: str(value) for name, value in fields.items()})
    data["photos"] = [(io.BytesIO(p), f"p{i}.png") for i, p in enumerate(photos)]
    headers = {"Authorization": f"Bearer {key}"}
    if "idempotency_key" in fields:
        headers["Idempotency-Key"] = data.pop("idempotency_key")
    return client.post(
        "/api/v1/reports", data=data, headers=headers, content_type="multipart/form-data"
    )


def photo_urls(client: FlaskClient, report_id: int) -> list[str]:
    report = client.get(f"/api/v1/reports/{report_id}").get_json()
    return [photo["url"].replace("http://localhost", "") for photo in report["photos"]]


# ---------------------------------------------------------------- both stores, directly


@pytest.fixture(params=["database", "directory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[PhotoStore]:
    if request.param == "directory":
        yield DirectoryPhotoStore(tmp_path / "media")
        return
    # the run's database, in the test's transaction (rolled back at its end)
    sessions: sessionmaker[Session] = request.getfixturevalue("sessions")
    with sessions() as session:
        yield DatabasePhotoStore(session)


def test_a_photo_is_put_once_and_read_back(store: PhotoStore) -> None:
    photo = cleaned(1)
    assert not store.exists(photo.filename) and store.get(photo.filename) is None
    assert store.put(photo.sha256, photo.content_type, photo.data) is True
    assert store.put(photo.sha256, photo.content_type, photo.data) is False, "stored once"
    found = store.get(photo.filename)
    assert found is not None
    assert (found.sha256, found.content_type, found.data) == (
        photo.sha256,
        "image/png",
        photo.data,
    )
    assert store.exists(photo.filename)
    if isinstance(store, DirectoryPhotoStore):
        assert [p.name for p in store.folder.iterdir()] == [photo.filename]
    else:
        count = store.session.scalar(select(func.count()).where(PhotoBlob.sha256 == photo.sha256))
        assert count == 1


def test_the_insert_itself_keeps_one_row_when_the_look_before_missed_it(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # What a second transaction storing the photo at the same moment sees: no row yet.
    photo = cleaned(7)
    with sessions() as session:
        store = DatabasePhotoStore(session)
        monkeypatch.setattr(store, "_type_of", lambda _sha256: None)
        assert store.put(photo.sha256, photo.content_type, photo.data) is True
        assert store.put(photo.sha256, photo.content_type, photo.data) is False
        count = session.scalar(select(func.count()).where(PhotoBlob.sha256 == photo.sha256))
        assert count == 1


def test_names_must_be_the_hash_and_the_stored_kind(store: PhotoStore) -> None:
    photo = cleaned(2)
    store.put(photo.sha256, photo.content_type, photo.data)
    for name in (
        f"{photo.sha256}.jpg",  # the right hash, another kind
        f"{photo.sha256.upper()}.png",
        f"{photo.sha256}.PNG",
        f"{photo.sha256}",
        f"../{photo.sha256}.png",
        f"{photo.sha256}.png/",
        f"{'0' * 64}.png",  # well-formed, not stored
        "",
    ):
        assert store.get(name) is None, name
        assert not store.exists(name), name


def test_what_is_put_must_be_what_the_name_promises(store: PhotoStore) -> None:
    photo = cleaned(3)
    other = cleaned(4)
    with pytest.raises(ValueError, match="hash"):
        store.put(other.sha256, photo.content_type, photo.data)
    with pytest.raises(ValueError, match="image/jpeg"):
        store.put(photo.sha256, "image/jpeg", photo.data)  # PNG bytes
    with pytest.raises(ValueError, match="not a photo type"):
        store.put(photo.sha256, "text/html", photo.data)
    html = b"<html><script>alert(1)</script></html>"
    with pytest.raises(ValueError):
        store.put(hashlib.sha256(html).hexdigest(), "image/png", html)
    assert store.get(photo.filename) is None and store.get(other.filename) is None


def test_a_requests_photos_are_stored_once_each_in_hash_order(tmp_path: Path) -> None:
    first, second = sorted([cleaned(5), cleaned(6)], key=lambda p: p.sha256)
    written: list[str] = []

    class Recording(DirectoryPhotoStore):
        def put(self, sha256: str, content_type: str, data: bytes) -> bool:
            written.append(sha256)
            return super().put(sha256, content_type, data)

    store = Recording(tmp_path)
    store_photos(store, [second, first, second])
    assert written == [first.sha256, second.sha256]
    assert store.exists(first.filename) and store.exists(second.filename)


# ---------------------------------------------------------------- uploads, in either store


@pytest.fixture(params=["database", "directory"])
def photo_store_kind(
    request: pytest.FixtureRequest, app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    monkeypatch.setitem(app.config, "PHOTO_STORE", request.param)
    monkeypatch.setitem(app.config, "MEDIA_DIR", str(tmp_path / "media"))
    kind: str = request.param
    return kind


def test_the_same_photo_in_two_reports_is_stored_once(
    client: FlaskClient,
    sessions: sessionmaker[Session],
    db: Session,
    photo_store_kind: str,
    app: Flask,
) -> None:
    key = make_key(sessions)
    blobs_before = blob_count(db)
    first = post_report(client, key, [tiny_png(10), tiny_png(11)])
    second = post_report(client, key, [tiny_png(10)], text="还是满的")
    assert first.status_code == second.status_code == 202, first.get_json()
    first_urls = photo_urls(client, first.get_json()["id"])
    second_urls = photo_urls(client, second.get_json()["id"])
    assert len(first_urls) == 2 and second_urls == first_urls[:1]
    for url in first_urls:
        served = client.get(url)
        assert served.status_code == 200 and served.mimetype == "image/png"
        assert served.headers["ETag"] == f'"{url.rsplit("/", 1)[1].split(".")[0]}"'
    names = {url.rsplit("/", 1)[1] for url in first_urls}
    if photo_store_kind == "database":
        assert blob_count(db) == blobs_before + 2
        assert names <= blob_names(db)
    else:
        assert blob_count(db) == blobs_before, "nothing in the database"
        assert {p.name for p in Path(app.config["MEDIA_DIR"]).iterdir()} == names


def test_a_retried_upload_stores_nothing_new(
    client: FlaskClient, sessions: sessionmaker[Session], db: Session
) -> None:
    key = make_key(sessions)
    first = post_report(client, key, [tiny_png(12)], idempotency_key="retry-1")
    after_first = blob_count(db)
    retried = post_report(client, key, [tiny_png(12)], idempotency_key="retry-1")
    assert retried.status_code == 202 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.get_json()["id"] == first.get_json()["id"]
    assert blob_count(db) == after_first


# ---------------------------------------------------------------- failed requests store nothing


def test_a_report_refused_in_its_transaction_leaves_no_photo(
    client: FlaskClient, sessions: sessionmaker[Session], db: Session
) -> None:
    key = make_key(sessions)
    before = blob_names(db)
    # the category is checked in the unit of work, after the photo was written in it
    refused = post_report(client, key, [tiny_png(20)], category="no_such_category")
    assert refused.status_code == 422, refused.get_json()
    assert "category" in refused.get_json()["error"]["fields"]
    assert blob_names(db) == before
    assert client.get(f"/media/{cleaned(20).filename}").status_code == 404

    # an Idempotency-Key reused with another photo: the second photo goes with the refusal
    kept = post_report(client, key, [tiny_png(21)], idempotency_key="reused")
    assert kept.status_code == 202
    reused = post_report(client, key, [tiny_png(22)], idempotency_key="reused")
    assert reused.status_code == 422
    assert reused.get_json()["error"]["code"] == "idempotency_key_reused"
    assert blob_names(db) == before | {cleaned(21).filename}


def test_an_open311_request_refused_in_its_transaction_leaves_no_photo(
    client: FlaskClient, reporter_key: str, db: Session
) -> None:
    before = blob_names(db)
    media = (io.BytesIO(tiny_png(23)), "gate.png")
    headers = {"Idempotency-Key": "open311-reused"}
    first = client.post(
        "/open311/v2/requests.json",
        data={**_open311_form(reporter_key), "media": media},
        headers=headers,
    )
    assert first.status_code == 201, first.get_data(as_text=True)
    again = client.post(
        "/open311/v2/requests.json",
        data={**_open311_form(reporter_key), "media": (io.BytesIO(tiny_png(24)), "gate.png")},
        headers=headers,
    )
    (error,) = open311_errors(again, 400)
    assert "Idempotency-Key" in error["description"]
    assert blob_names(db) == before | {cleaned(23).filename}


def _open311_form(key: str) -> dict[str, str]:
    return {
        "api_key": key,
        "service_code": "manhole_cover",
        "lat": str(POINT["lat"]),
        "long": str(POINT["lon"]),
        "description": "井盖没了",
        "attribute[cover_state]": "missing",
    }


def test_a_resolution_refused_leaves_no_after_photo(
    client: FlaskClient, sessions: sessionmaker[Session], db: Session
) -> None:
    # (the console's form: tests/integration/test_console.py)
    case = make_case(sessions)
    assert case.status == "routed"  # not resolvable before it is accepted
    before = blob_names(db)
    staff_key = make_key(sessions, role="office", office_code=OFFICE)
    refused = client.post(
        f"/api/v1/cases/{case.id}/resolve",
        data={"note": "已清运", "photos": [(io.BytesIO(tiny_png(25)), "after.png")]},
        headers={"Authorization": f"Bearer {staff_key}"},
    )
    assert refused.status_code == 409, refused.get_json()
    assert blob_names(db) == before


# ---------------------------------------------------------------- serving


@pytest.fixture
def served_photo(client: FlaskClient, sessions: sessionmaker[Session]) -> str:
    """The URL path of a photo a report stored."""
    response = post_report(client, make_key(sessions), [tiny_png(30)])
    assert response.status_code == 202
    (url,) = photo_urls(client, response.get_json()["id"])
    return url


def test_photos_are_served_with_the_headers_of_immutable_content(
    client: FlaskClient, served_photo: str
) -> None:
    name = served_photo.rsplit("/", 1)[1]
    sha256 = name.split(".")[0]
    served = client.get(served_photo)
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/png"
    assert served.data == cleaned(30).data
    assert served.headers["Content-Length"] == str(len(served.data))
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    assert served.headers["Content-Security-Policy"] == (
        "default-src 'none'; sandbox; frame-ancestors 'none'"
    )
    assert served.headers["Content-Disposition"] == f'inline; filename="{name}"'
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["ETag"] == f'"{sha256}"'  # strong: no W/

    part = client.get(served_photo, headers={"Range": "bytes=0-7"})
    assert part.status_code == 206 and part.data == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "if_none_match",
    ['"{sha}"', 'W/"{sha}"', '"other", "{sha}"', "*"],
)
def test_a_revalidation_is_answered_304(
    client: FlaskClient, served_photo: str, if_none_match: str
) -> None:
    name = served_photo.rsplit("/", 1)[1]
    sha256 = name.split(".")[0]
    answer = client.get(served_photo, headers={"If-None-Match": if_none_match.format(sha=sha256)})
    assert answer.status_code == 304
    assert answer.data == b""
    assert answer.headers["ETag"] == f'"{sha256}"'
    assert answer.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_another_etag_gets_the_photo(client: FlaskClient, served_photo: str) -> None:
    answer = client.get(served_photo, headers={"If-None-Match": f'"{"0" * 64}"'})
    assert answer.status_code == 200 and answer.data == cleaned(30).data


@pytest.mark.parametrize("photo_store", ["database", "directory"])
def test_a_missing_photo_is_404_even_when_revalidated(
    client: FlaskClient,
    app: Flask,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    photo_store: str,
) -> None:
    monkeypatch.setitem(app.config, "PHOTO_STORE", photo_store)
    monkeypatch.setitem(app.config, "MEDIA_DIR", str(tmp_path))
    missing = cleaned(31)
    for headers in ({}, {"If-None-Match": f'"{missing.sha256}"'}, {"If-None-Match": "*"}):
        answer = client.get(f"/media/{missing.filename}", headers=headers)
        assert answer.status_code == 404, headers
        assert answer.get_json()["error"]["code"] == "not_found"
    for bad in ("x.png", f"{missing.sha256}.gif", f"{missing.sha256}.png.png"):
        assert client.get(f"/media/{bad}").status_code == 404


def test_the_directory_store_serves_with_the_same_headers(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(app.config, "PHOTO_STORE", "directory")
    monkeypatch.setitem(app.config, "MEDIA_DIR", str(tmp_path))
    photo = cleaned(32)
    (tmp_path / photo.filename).write_bytes(photo.data)
    served = client.get(f"/media/{photo.filename}")
    assert served.status_code == 200 and served.data == photo.data
    assert served.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert served.headers["ETag"] == f'"{photo.sha256}"'
    revalidated = client.get(
        f"/media/{photo.filename}", headers={"If-None-Match": served.headers["ETag"]}
    )
    assert revalidated.status_code == 304


def test_an_unknown_photo_store_stops_the_app(make_app: Any) -> None:
    with pytest.raises(ValueError, match="PHOTO_STORE must be one of database, directory"):
        make_app(PHOTO_STORE="s3")


# ---------------------------------------------------------------- PostgreSQL: at the same moment


@pytest.fixture
def postgresql_only(database_url: str) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: one transaction never waits on another")


def waiting_on_a_lock(sessions: sessionmaker[Session]) -> bool:
    with sessions() as session:
        waiting = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
        )
    return bool(waiting)


class RecordingStore(DatabasePhotoStore):
    """The database store, keeping what each put answered."""

    def __init__(self, session: Session) -> None:
        super().__init__(session)
        self.outcomes: list[bool] = []

    def put(self, sha256: str, content_type: str, data: bytes) -> bool:
        self.outcomes.append(super().put(sha256, content_type, data))
        return self.outcomes[-1]


def put_in_thread(
    sessions: sessionmaker[Session], photos: list[UploadedPhoto], results: dict[str, Any]
) -> threading.Thread:
    """``store_photos`` of ``photos`` in a committed transaction of its own, on a thread."""

    def run() -> None:
        try:
            with unit_of_work(sessions) as session:
                store = RecordingStore(session)
                store_photos(store, photos)
                results["new"] = store.outcomes
        except DBAPIError as error:
            results["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def rows_of(sessions: sessionmaker[Session], photos: list[UploadedPhoto]) -> int:
    with sessions() as session:
        hashes = [p.sha256 for p in photos]
        return session.scalar(select(func.count()).where(PhotoBlob.sha256.in_(hashes))) or 0


@pytest.mark.committed
@pytest.mark.parametrize("first_commits", [True, False])
def test_two_transactions_storing_one_photo_at_once_keep_one_row(
    sessions: sessionmaker[Session], postgresql_only: None, first_commits: bool
) -> None:
    photo = cleaned(40 + int(first_commits))
    results: dict[str, Any] = {}
    session = sessions()
    try:
        assert DatabasePhotoStore(session).put(photo.sha256, photo.content_type, photo.data)
        # the other transaction does not see this row yet, and its insert waits for this one
        thread = put_in_thread(sessions, [photo], results)
        wait_for(lambda: waiting_on_a_lock(sessions), LOCK_WAIT_TIMEOUT_S, "the second insert")
        if first_commits:
            session.commit()
        else:
            session.rollback()  # a report that failed: the waiting one stores the photo
    finally:
        session.close()
    thread.join(THREAD_TIMEOUT_S)
    assert "error" not in results, results
    # committed first: the second did nothing; rolled back: the second stored it
    assert results["new"] == [not first_commits]
    assert rows_of(sessions, [photo]) == 1


@pytest.mark.committed
def test_two_requests_storing_the_same_photos_in_either_order_do_not_deadlock(
    sessions: sessionmaker[Session], postgresql_only: None
) -> None:
    low, high = sorted([cleaned(42), cleaned(43)], key=lambda p: p.sha256)
    results: dict[str, Any] = {}
    session = sessions()
    try:
        store = DatabasePhotoStore(session)
        store_photos(store, [low])
        # The other request has them the other way round; in hash order it waits on the first
        # photo, holding nothing, so this one can go on and store the second.
        thread = put_in_thread(sessions, [high, low], results)
        wait_for(lambda: waiting_on_a_lock(sessions), LOCK_WAIT_TIMEOUT_S, "the other request")
        store_photos(store, [high])
        session.commit()
    finally:
        session.close()
    thread.join(THREAD_TIMEOUT_S)
    assert "error" not in results, results
    assert results["new"] == [False, False]
    assert rows_of(sessions, [low, high]) == 2


# ---------------------------------------------------------------- cityrelay import-media


@pytest.mark.committed  # the command line opens its own connection
def test_import_media_copies_a_folders_photos_into_the_database(
    database_url: str, sessions: sessionmaker[Session], client: FlaskClient, tmp_path: Path
) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    photos = [cleaned(50), cleaned(51)]
    for photo in photos:
        (folder / photo.filename).write_bytes(photo.data)
    # A HEIC stored before uploads were re-encoded is imported as it is.
    heic = b"\x00\x00\x00\x18ftypheic" + b"\x00" * 40
    heic_name = f"{hashlib.sha256(heic).hexdigest()}.heic"
    (folder / heic_name).write_bytes(heic)
    # Left out, and named: what the folder store never wrote.
    wrong_hash = f"{'a' * 64}.png"
    (folder / wrong_hash).write_bytes(tiny_png(52))
    html = b"<html><script>alert(1)</script></html>"
    not_an_image = f"{hashlib.sha256(html).hexdigest()}.png"
    (folder / not_an_image).write_bytes(html)
    (folder / ".upload-x1y2").write_bytes(b"half a file")
    (folder / "notes.txt").write_text("not a photo")
    (folder / "sub").mkdir()
    files = sorted(p.name for p in folder.iterdir())

    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    first = runner.invoke(main, ["import-media", "--from", str(folder)], env=env)
    assert first.exit_code == 0, first.output
    assert "3 imported, 0 stored already, 4 left out" in first.output
    assert f"left out {wrong_hash}: its bytes do not hash to its name" in first.output
    assert f"left out {not_an_image}: not a PNG image" in first.output
    assert "left out .upload-x1y2" in first.output and "left out notes.txt" in first.output
    for photo in photos:
        served = client.get(f"/media/{photo.filename}")
        assert served.status_code == 200 and served.data == photo.data
    heic_served = client.get(f"/media/{heic_name}")
    assert heic_served.status_code == 200 and heic_served.mimetype == "image/heic"
    assert client.get(f"/media/{wrong_hash}").status_code == 404

    # Again, from CITYRELAY_MEDIA_DIR (the default): nothing new, nothing lost.
    again = runner.invoke(main, ["import-media"], env={**env, "CITYRELAY_MEDIA_DIR": str(folder)})
    assert again.exit_code == 0, again.output
    assert "0 imported, 3 stored already, 4 left out" in again.output
    assert rows_of(sessions, photos) == 2
    assert sorted(p.name for p in folder.iterdir()) == files, "the folder is left as it was"


def test_import_media_refuses_a_missing_folder_and_explains_itself(tmp_path: Path) -> None:
    runner = CliRunner()
    missing = runner.invoke(main, ["import-media", "--from", str(tmp_path / "nowhere")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    default_missing = runner.invoke(
        main, ["import-media"], env={"CITYRELAY_MEDIA_DIR": str(tmp_path / "nowhere")}
    )
    assert default_missing.exit_code == 1 and "no such folder" in default_missing.output
    described = runner.invoke(main, ["import-media", "--help"])
    assert described.exit_code == 0
    assert "--from" in described.output and "safe to repeat" in described.output
