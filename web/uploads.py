"""Reading uploaded files off the request, bounded, before any transaction opens."""

from __future__ import annotations

from flask import current_app
from werkzeug.datastructures import FileStorage

from services.photos import UploadedPhoto, check_photo_count, check_photos, store_photos


def read_photos(files: list[FileStorage]) -> list[UploadedPhoto]:
    """The uploads checked, decoded and re-encoded without their metadata (each photo keeps the
    location its EXIF gave, see ``services.photos``), not stored yet."""
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


def store_read_photos(photos: list[UploadedPhoto]) -> None:
    """Photos from ``read_photos`` stored under the media folder. Files are named by their
    content, so one left behind by a request that failed later is harmless and reused by a
    retry."""
    store_photos(current_app.config["MEDIA_DIR"], photos)


def read_and_store_photos(files: list[FileStorage]) -> list[UploadedPhoto]:
    """``read_photos``, then ``store_read_photos``."""
    photos = read_photos(files)
    store_read_photos(photos)
    return photos
