"""Photo checks and storage. Files are named by their SHA-256, so a retried upload or the
same photo in two reports is stored once, and a file left by a failed transaction is harmless."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from services.errors import InvalidField, TooLarge

# Sniffed from the bytes; the client's declared type is not trusted.
_SIGNATURES: tuple[tuple[str, str], ...] = (
    ("image/jpeg", "jpg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
    ("image/heic", "heic"),
)


def sniff_image_type(head: bytes) -> tuple[str, str] | None:
    if head.startswith(b"\xff\xd8\xff"):
        return _SIGNATURES[0]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return _SIGNATURES[1]
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return _SIGNATURES[2]
    if head[4:8] == b"ftyp" and head[8:12] in {b"heic", b"heix", b"mif1", b"msf1", b"heif"}:
        return _SIGNATURES[3]
    return None


@dataclass(frozen=True)
class UploadedPhoto:
    data: bytes
    sha256: str
    content_type: str
    extension: str

    @property
    def filename(self) -> str:
        return f"{self.sha256}.{self.extension}"


def check_photo_count(count: int, max_count: int) -> None:
    if count > max_count:
        raise InvalidField("photos", f"At most {max_count} photos per report; got {count}.")


def check_photos(uploads: list[bytes], max_count: int, max_bytes: int) -> list[UploadedPhoto]:
    """The uploads as photos, each sniffed from its bytes; refuses too many, too large, empty
    or non-image files, naming the one at fault (``photos.<index>``)."""
    check_photo_count(len(uploads), max_count)
    photos = []
    for index, data in enumerate(uploads):
        if len(data) > max_bytes:
            raise TooLarge(f"photos.{index}", f"Larger than {max_bytes} bytes.")
        if not data:
            raise InvalidField(f"photos.{index}", "Empty file.")
        kind = sniff_image_type(data[:16])
        if kind is None:
            raise InvalidField(f"photos.{index}", "Not a JPEG, PNG, WebP or HEIC image.")
        photos.append(UploadedPhoto(data, hashlib.sha256(data).hexdigest(), *kind))
    return photos


def store_photo(media_dir: str | Path, photo: UploadedPhoto) -> None:
    target = Path(media_dir) / photo.filename
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name and rename, so a reader never sees half a file.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(photo.data)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def store_photos(media_dir: str | Path, photos: list[UploadedPhoto]) -> None:
    for photo in photos:
        store_photo(media_dir, photo)
