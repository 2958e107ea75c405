"""Photo checks and storage. Files are named by their SHA-256, so a retried upload or the
same photo in two reports is stored once, and a file left by a failed transaction is harmless."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from werkzeug.datastructures import FileStorage

from intake.errors import field_error

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


def read_photos(files: list[FileStorage], max_count: int, max_bytes: int) -> list[UploadedPhoto]:
    if len(files) > max_count:
        raise field_error("photos", f"At most {max_count} photos per report; got {len(files)}.")
    photos = []
    for index, upload in enumerate(files):
        data = upload.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise field_error(f"photos.{index}", f"Larger than {max_bytes} bytes.", status=413)
        if not data:
            raise field_error(f"photos.{index}", "Empty file.")
        kind = sniff_image_type(data[:16])
        if kind is None:
            raise field_error(f"photos.{index}", "Not a JPEG, PNG, WebP or HEIC image.")
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
