"""Photo uploads: every photo decoded and stored anew without metadata, a report without
coordinates placed by its first photo's EXIF GPS, a pixel limit before decoding, and stored
media served with the sniffed type and headers that keep browsers from running it."""

from __future__ import annotations

import io
import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Any

import pillow_heif
import pytest
from flask import Flask
from flask.testing import FlaskClient
from PIL import ExifTags, Image, ImageCms
from PIL.TiffImagePlugin import IFDRational
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from models.entities import PhotoBlob, Report
from services.photos import check_photos
from tests.helpers import OPEN311, open311_errors, open311_post, sample_point

POINT = sample_point()
SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
HTML_AS_PNG = b"\x89PNG\r\n\x1a\n<html><script>alert(document.cookie)</script></html>"


def _dms(value: float) -> tuple[IFDRational, IFDRational, IFDRational]:
    """Unsigned decimal degrees as EXIF's degrees, minutes and seconds."""
    value = abs(value)
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = Fraction(round((value - degrees - minutes / 60) * 3600 * 10000), 10000)
    return (
        IFDRational(degrees, 1),
        IFDRational(minutes, 1),
        IFDRational(seconds.numerator, seconds.denominator),
    )


def photo(
    fmt: str = "JPEG",
    size: tuple[int, int] = (40, 20),
    gps: tuple[float, float] | None = None,
    orientation: int | None = None,
    colour: tuple[int, int, int] = (200, 30, 30),
) -> bytes:
    """A photo as a phone writes it: EXIF (camera make, maybe orientation and GPS) and an ICC
    profile; a JPEG also has an XMP packet and a comment."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "CityPhone"
    if orientation is not None:
        exif[ExifTags.Base.Orientation] = orientation
    if gps is not None:
        lat, lon = gps
        exif.get_ifd(ExifTags.IFD.GPSInfo).update(
            {
                ExifTags.GPS.GPSLatitudeRef: "N" if lat >= 0 else "S",
                ExifTags.GPS.GPSLatitude: _dms(lat),
                ExifTags.GPS.GPSLongitudeRef: "E" if lon >= 0 else "W",
                ExifTags.GPS.GPSLongitude: _dms(lon),
            }
        )
    options: dict[str, Any] = {"exif": exif, "icc_profile": SRGB}
    if fmt == "JPEG":
        options.update(comment=b"taken on Ring Road", xmp=b"<x:xmpmeta>secret</x:xmpmeta>")
    image = Image.new("RGB", size, colour)
    out = io.BytesIO()
    if fmt == "HEIF":
        pillow_heif.register_heif_opener()
        image.save(out, fmt, exif=exif.tobytes())
    else:
        image.save(out, fmt, **options)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG of a few dozen bytes whose header claims ``width`` × ``height`` pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(kind + data))
        return struct.pack(">I", len(data)) + kind + data + crc

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def count_reports(db: Session) -> int:
    db.expire_all()
    return db.scalar(select(func.count()).select_from(Report)) or 0


def stored_photo_count(db: Session) -> int:
    """Photos in the run's photo store (the database, the default)."""
    db.expire_all()
    return db.scalar(select(func.count()).select_from(PhotoBlob)) or 0


def post_report(
    client: FlaskClient, auth: dict, photos: list[bytes], headers: dict | None = None, **fields: Any
) -> Any:
    data: dict[str, Any] = {"text": "井盖没了", **{k: str(v) for k, v in fields.items()}}
    data["photos"] = [(io.BytesIO(p), f"p{i}.jpg") for i, p in enumerate(photos)]
    return client.post(
        "/api/v1/reports",
        data=data,
        headers={**auth, **(headers or {})},
        content_type="multipart/form-data",
    )


def stored_photos(client: FlaskClient, report_id: int) -> list[dict[str, Any]]:
    report = client.get(f"/api/v1/reports/{report_id}").get_json()
    photos: list[dict[str, Any]] = report["photos"]
    return photos


def fetch(client: FlaskClient, url: str) -> Any:
    return client.get(url.replace("http://localhost", ""))


# ---------- re-encoded without metadata ----------


@pytest.mark.parametrize(
    ("fmt", "content_type"),
    [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")],
)
def test_photos_are_stored_re_encoded_without_metadata(
    client: FlaskClient, auth: dict, fmt: str, content_type: str
) -> None:
    original = photo(fmt, gps=(POINT["lat"], POINT["lon"]))
    assert Image.open(io.BytesIO(original)).getexif()  # what a phone sends
    response = post_report(client, auth, [original], lat=POINT["lat"], lon=POINT["lon"])
    assert response.status_code == 202, response.get_json()

    (listed,) = stored_photos(client, response.get_json()["id"])
    served = fetch(client, listed["url"])
    assert served.status_code == 200
    assert listed["content_type"] == served.mimetype == content_type
    assert listed["size_bytes"] == len(served.data)
    stored = Image.open(io.BytesIO(served.data))
    assert stored.format == fmt and stored.size == (40, 20)
    assert not stored.getexif(), "the EXIF (and its GPS) is dropped"
    assert not {"exif", "icc_profile", "xmp", "comment"} & set(stored.info)
    for marker in (b"Exif\0\0", b"CityPhone", b"xmpmeta", b"Ring Road"):
        assert marker not in served.data
    assert stored.convert("RGB").getpixel((5, 5)) == pytest.approx((200, 30, 30), abs=8)


def test_exif_orientation_is_applied_before_it_is_dropped(client: FlaskClient, auth: dict) -> None:
    # Orientation 6: the camera was turned; viewers rotate the 40×20 pixels 90° clockwise.
    response = post_report(client, auth, [photo(orientation=6)], lat=POINT["lat"], lon=POINT["lon"])
    assert response.status_code == 202, response.get_json()
    (listed,) = stored_photos(client, response.get_json()["id"])
    stored = Image.open(io.BytesIO(fetch(client, listed["url"]).data))
    assert stored.size == (20, 40)
    assert ExifTags.Base.Orientation not in stored.getexif()


def test_heic_is_stored_as_jpeg_without_metadata(client: FlaskClient, auth: dict) -> None:
    original = photo("HEIF", gps=(POINT["lat"], POINT["lon"]))
    assert original[4:12] == b"ftypheic"
    response = post_report(client, auth, [original])
    assert response.status_code == 202, response.get_json()
    (listed,) = stored_photos(client, response.get_json()["id"])
    assert listed["content_type"] == "image/jpeg" and listed["url"].endswith(".jpg")
    stored = Image.open(io.BytesIO(fetch(client, listed["url"]).data))
    assert stored.format == "JPEG" and not stored.getexif()


def test_png_signature_followed_by_html_is_refused(
    client: FlaskClient, auth: dict, db: Session, app: Flask
) -> None:
    before = stored_photo_count(db)
    response = post_report(client, auth, [HTML_AS_PNG], lat=POINT["lat"], lon=POINT["lon"])
    assert response.status_code == 422, response.get_data(as_text=True)
    assert "photos.0" in response.get_json()["error"]["fields"]
    assert count_reports(db) == 0
    assert stored_photo_count(db) == before


def test_png_signature_followed_by_html_is_refused_by_open311(
    client: FlaskClient, reporter_key: str, db: Session, app: Flask
) -> None:
    before = stored_photo_count(db)
    response = open311_post(client, reporter_key, media=(io.BytesIO(HTML_AS_PNG), "gate.png"))
    (error,) = open311_errors(response, 400)
    assert "photos.0" in error["description"]
    assert count_reports(db) == 0
    assert stored_photo_count(db) == before


def test_a_truncated_jpeg_is_refused(client: FlaskClient, auth: dict, db: Session) -> None:
    response = post_report(
        client, auth, [photo(size=(400, 300))[:300]], lat=POINT["lat"], lon=POINT["lon"]
    )
    assert response.status_code == 422
    assert "photos.0" in response.get_json()["error"]["fields"]
    assert count_reports(db) == 0


# ---------- the location from the first photo's EXIF GPS ----------


def test_report_without_coordinates_is_placed_by_the_photo_gps(
    client: FlaskClient, auth: dict, db: Session
) -> None:
    first = photo(gps=(POINT["lat"], POINT["lon"]))
    second = photo(gps=(30.0, 120.0), colour=(0, 0, 200))
    key = {"Idempotency-Key": "gps-placed"}
    response = post_report(client, auth, [first, second], headers=key)
    assert response.status_code == 202, response.get_json()
    report = client.get(f"/api/v1/reports/{response.get_json()['id']}", headers=auth).get_json()
    assert report["lat"] == pytest.approx(POINT["lat"], abs=1e-6)
    assert report["lon"] == pytest.approx(POINT["lon"], abs=1e-6)
    for listed in report["photos"]:
        assert not Image.open(io.BytesIO(fetch(client, listed["url"]).data)).getexif()

    retried = post_report(client, auth, [first, second], headers=key)
    assert retried.status_code == 202 and retried.headers["Idempotent-Replayed"] == "true"
    assert retried.get_json()["id"] == response.get_json()["id"]
    assert count_reports(db) == 1

    # Coordinates given win over the photo's; a photo without GPS places nothing.
    given = post_report(
        client, auth, [photo(gps=(30.0, 120.0))], lat=POINT["lat"], lon=POINT["lon"]
    )
    assert given.status_code == 202
    assert (
        client.get(f"/api/v1/reports/{given.get_json()['id']}", headers=auth).get_json()["lat"]
        == POINT["lat"]
    )
    unplaced = post_report(client, auth, [photo()])
    assert unplaced.status_code == 422 and "lat" in unplaced.get_json()["error"]["fields"]


def test_open311_request_without_coordinates_is_placed_by_the_media_gps(
    client: FlaskClient, reporter_key: str
) -> None:
    response = open311_post(
        client,
        reporter_key,
        lat=None,
        long=None,
        media=(io.BytesIO(photo(gps=(POINT["lat"], POINT["lon"]))), "gate.jpg"),
    )
    assert response.status_code == 201, response.get_data(as_text=True)
    request_id = response.get_json()[0]["service_request_id"]
    # Open311 reads are public: the point to about 100 m; the reporter reads it exactly.
    (one,) = client.get(f"{OPEN311}/requests/{request_id}.json").get_json()
    assert one["lat"] == round(POINT["lat"], 3) and one["long"] == round(POINT["lon"], 3)
    mine = client.get(
        f"/api/v1/reports/{request_id}", headers={"Authorization": f"Bearer {reporter_key}"}
    ).get_json()
    assert mine["lat"] == pytest.approx(POINT["lat"], abs=1e-6)
    assert mine["lon"] == pytest.approx(POINT["lon"], abs=1e-6)
    assert not Image.open(io.BytesIO(fetch(client, one["media_url"]).data)).getexif()


def test_gps_hemispheres_and_broken_gps() -> None:
    (south_west,) = check_photos([photo(gps=(-33.8568, -70.6483))], 1, 10**7)
    assert south_west.location == pytest.approx((-33.8568, -70.6483), abs=1e-6)

    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.GPSInfo).update(
        {
            ExifTags.GPS.GPSLatitudeRef: "N",
            ExifTags.GPS.GPSLatitude: (IFDRational(31, 0), IFDRational(0), IFDRational(0)),
            ExifTags.GPS.GPSLongitudeRef: "E",
            ExifTags.GPS.GPSLongitude: (IFDRational(121), IFDRational(0), IFDRational(0)),
        }
    )
    out = io.BytesIO()
    Image.new("RGB", (8, 8)).save(out, "JPEG", exif=exif)
    (broken,) = check_photos([out.getvalue()], 1, 10**7)
    assert broken.location is None


# ---------- the pixel limit ----------


@pytest.mark.parametrize(
    "size",
    [(8000, 6000), (20000, 20000)],  # over the limit; far over Pillow's own bomb limit too
)
def test_huge_dimensions_are_refused_before_decoding(
    client: FlaskClient, auth: dict, db: Session, app: Flask, size: tuple[int, int]
) -> None:
    bomb = png_claiming(*size)
    assert len(bomb) < 200
    before = stored_photo_count(db)
    response = post_report(client, auth, [bomb], lat=POINT["lat"], lon=POINT["lon"])
    assert response.status_code == 413, response.get_data(as_text=True)
    assert "photos.0" in response.get_json()["error"]["fields"]
    assert count_reports(db) == 0
    assert stored_photo_count(db) == before


def test_pixel_limit_is_the_setting(
    client: FlaskClient, auth: dict, monkeypatch: pytest.MonkeyPatch, app: Flask
) -> None:
    monkeypatch.setitem(app.config, "MAX_PHOTO_PIXELS", 799)
    response = post_report(client, auth, [photo()], lat=POINT["lat"], lon=POINT["lon"])
    assert response.status_code == 413, response.get_data(as_text=True)
    assert "40×20" in response.get_json()["error"]["fields"]["photos.0"][0]


# ---------- serving stored media ----------


def test_media_is_served_with_sniffed_type_and_safe_headers(
    client: FlaskClient, auth: dict
) -> None:
    response = post_report(client, auth, [photo()], lat=POINT["lat"], lon=POINT["lon"])
    (listed,) = stored_photos(client, response.get_json()["id"])
    served = fetch(client, listed["url"])
    name = listed["url"].rsplit("/", 1)[1]
    assert served.status_code == 200
    assert served.headers["Content-Type"] == "image/jpeg"
    assert served.headers["X-Content-Type-Options"] == "nosniff"
    policy = served.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "sandbox" in policy
    assert served.headers["Content-Disposition"] == f'inline; filename="{name}"'


def test_media_type_comes_from_the_stored_bytes(
    client: FlaskClient, app: Flask, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Files copied into a shared media folder by hand: what the bytes are decides, not the name.
    folder = tmp_path / "media"
    folder.mkdir()
    monkeypatch.setitem(app.config, "PHOTO_STORE", "directory")
    monkeypatch.setitem(app.config, "MEDIA_DIR", str(folder))
    html = folder / f"{'a' * 64}.png"
    html.write_bytes(b"<html><script>alert(1)</script></html>")
    jpeg_named_png = folder / f"{'b' * 64}.png"
    jpeg_named_png.write_bytes(photo())
    try:
        refused = client.get(f"/media/{html.name}")
        assert refused.status_code == 404
        assert refused.mimetype == "application/json"
        served = client.get(f"/media/{jpeg_named_png.name}")
        assert served.status_code == 200 and served.mimetype == "image/jpeg"
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        revalidated = client.get(f"/media/{html.name}", headers={"If-None-Match": f'"{"a" * 64}"'})
        assert revalidated.status_code == 404, "a file that is no image is not a photo, ever"
    finally:
        html.unlink()
        jpeg_named_png.unlink()
