"""Reading uploaded files off the request, bounded, before any transaction opens; storing them
in the request's unit of work."""

from __future__ import annotations

from flask import current_app
from sqlalchemy.orm import Session
from werkzeug.datastructures import FileStorage

from services.photo_store import PhotoStore, open_photo_store, store_photos
from services.photos import UploadedPhoto, check_photo_count, check_photos


def read_photos(files: list[FileStorage]) -> list[UploadedPhoto]:
    """The uploads checked, decoded and re-encoded without their metadata (each photo keeps the
    location its EXIF gave, see ``services.photos``), not stored yet: the slow part of an upload
    runs before the write transaction opens."""
    max_bytes = current_app.config["MAX_PHOTO_BYTES"]
    check_photo_count(len(files), current_app.config["MAX_PHOTOS"])
    # One byte past the limit is enough to know a file is too large without reading it all.
    uploads = [upload.read(max_bytes + 1) for upload in files]
    return check_photos(
        uploads,
        current_app.config["MAX_PHOTOS"],
        max_bytes,
        current_app.config["MAX_PHOTO_PIXELS"],
    )


def photo_store(session: Session) -> PhotoStore:
    """The configured photo store (``PHOTO_STORE``), reading and writing through ``session``."""
    return open_photo_store(
        current_app.config["PHOTO_STORE"], current_app.config["MEDIA_DIR"], session
    )


def store_read_photos(session: Session, photos: list[UploadedPhoto]) -> None:
    """Photos from ``read_photos`` stored through the request's unit of work ``session``: in
    the database they commit with the report or resolution that names them, or not at all."""
    store_photos(photo_store(session), photos)
