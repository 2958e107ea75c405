"""Where stored photos are kept, behind one small interface (``PhotoStore``), so that every web
machine serves every photo whichever machine took the upload.

- ``DatabasePhotoStore`` (``PHOTO_STORE=database``, the default) keeps the bytes in the
  ``photo_blobs`` table. Web machines and workers need nothing but the PostgreSQL and Redis they
  share, and a photo is written by the request's own unit of work: it commits with the report (or
  the resolution) that names it, and is rolled back with it.
- ``DirectoryPhotoStore`` (``PHOTO_STORE=directory``) keeps files in ``MEDIA_DIR``, for whoever
  shares a folder between the machines (NFS and the like). A file written for a request that
  fails later stays behind, harmless: a retry finds it.

Photos are content-addressed: a photo's name is ``<sha256>.<extension>``, the SHA-256 of the
bytes stored, so a retried upload or the same photo in two reports is stored once, and what a
name serves never changes."""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from models.base import utcnow
from models.entities import PhotoBlob
from models.session import on_conflict_insert
from services.photos import UploadedPhoto, sniff_image_type

DATABASE = "database"
DIRECTORY = "directory"
PHOTO_STORES = (DATABASE, DIRECTORY)

# The types a stored photo may have, and the extension its name carries. Uploads are stored as
# JPEG, PNG or WebP; a HEIC can only come from a media folder of the days before re-encoding.
EXTENSIONS = {"image/jpeg": "jpg", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}
_NAME = re.compile(r"^([0-9a-f]{64})\.(jpg|png|webp|heic)$")


@dataclass(frozen=True)
class StoredPhoto:
    sha256: str
    # The type the bytes are, as sniffed from them (never taken from a name or a client).
    content_type: str
    data: bytes


def photo_name(sha256: str, content_type: str) -> str:
    """The name a stored photo is known by (``Photo.filename``, the /media URL)."""
    return f"{sha256}.{EXTENSIONS[content_type]}"


def parse_photo_name(name: str) -> tuple[str, str] | None:
    """``(sha256, extension)`` of a well-formed photo name, else None."""
    found = _NAME.match(name)
    return (found.group(1), found.group(2)) if found else None


class PhotoStore(Protocol):
    def put(self, sha256: str, content_type: str, data: bytes) -> bool:
        """Store ``data``, a ``content_type`` image whose SHA-256 is ``sha256``; True if it was
        not stored yet. Storing a photo again changes nothing (and is safe when two requests
        store one photo at once)."""
        ...

    def get(self, name: str) -> StoredPhoto | None:
        """The photo named ``name`` (``<sha256>.<extension>``), or None: no such photo, a
        malformed name, or bytes that are no image of the name's kind."""
        ...

    def exists(self, name: str) -> bool:
        """Whether ``get(name)`` would find the photo, without reading its bytes where the
        store allows it."""
        ...


def _checked(sha256: str, content_type: str, data: bytes) -> None:
    """What ``put`` is given must be what the name will promise: a name serves one content
    forever (the answers say ``immutable``)."""
    if content_type not in EXTENSIONS:
        raise ValueError(f"not a photo type: {content_type!r}")
    kind = sniff_image_type(data[:16])
    if kind is None or kind[0] != content_type:
        raise ValueError(f"the bytes given are no {content_type}")
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(f"the bytes given do not hash to {sha256}")


class DatabasePhotoStore:
    """Photos in ``photo_blobs``, written through ``session``: a put is part of the session's
    transaction and never commits."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def put(self, sha256: str, content_type: str, data: bytes) -> bool:
        _checked(sha256, content_type, data)
        # A photo stored already (a retry, the same photo in another report) is not sent to the
        # database again: a few bytes of query instead of megabytes.
        if self._type_of(sha256) is not None:
            return False
        # Two requests storing one photo at once: on PostgreSQL the second insert waits for the
        # first transaction, then does nothing if it committed (or inserts if it rolled back);
        # SQLite writers never overlap.
        statement = (
            on_conflict_insert(self.session, PhotoBlob)
            .values(
                sha256=sha256,
                content_type=content_type,
                size_bytes=len(data),
                data=data,
                created_at=utcnow(),
            )
            .on_conflict_do_nothing(index_elements=[PhotoBlob.sha256])
        )
        # The key comes back only from a row this statement inserted (rowcount does not say:
        # an ORM insert reports none).
        inserted = self.session.scalar(statement.returning(PhotoBlob.sha256))
        return inserted is not None

    def get(self, name: str) -> StoredPhoto | None:
        parsed = parse_photo_name(name)
        if parsed is None:
            return None
        sha256, extension = parsed
        row = self.session.execute(
            select(PhotoBlob.content_type, PhotoBlob.data).where(PhotoBlob.sha256 == sha256)
        ).one_or_none()
        if row is None or EXTENSIONS.get(row.content_type) != extension:
            return None
        return StoredPhoto(sha256, row.content_type, row.data)

    def exists(self, name: str) -> bool:
        parsed = parse_photo_name(name)
        if parsed is None:
            return False
        sha256, extension = parsed
        content_type = self._type_of(sha256)
        return content_type is not None and EXTENSIONS.get(content_type) == extension

    def _type_of(self, sha256: str) -> str | None:
        return self.session.scalar(select(PhotoBlob.content_type).where(PhotoBlob.sha256 == sha256))


class DirectoryPhotoStore:
    """Photos as files named ``<sha256>.<extension>`` in ``folder``. A file's type is sniffed
    from its first bytes, whatever its name says, and a file there that is no image (put there
    by hand) is no photo."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def put(self, sha256: str, content_type: str, data: bytes) -> bool:
        _checked(sha256, content_type, data)
        target = self.folder / photo_name(sha256, content_type)
        if target.exists():
            return False
        target.parent.mkdir(parents=True, exist_ok=True)
        # Written under a temporary name and renamed, so a reader never sees half a file; two
        # writers of one photo rename the same bytes over each other.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                out.write(data)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return True

    def get(self, name: str) -> StoredPhoto | None:
        parsed = parse_photo_name(name)
        if parsed is None:
            return None
        try:
            data = (self.folder / name).read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return None
        kind = sniff_image_type(data[:16])
        return StoredPhoto(parsed[0], kind[0], data) if kind is not None else None

    def exists(self, name: str) -> bool:
        if parse_photo_name(name) is None:
            return False
        try:
            with (self.folder / name).open("rb") as stored:
                return sniff_image_type(stored.read(16)) is not None
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return False


def open_photo_store(kind: str, media_dir: str | Path | None, session: Session) -> PhotoStore:
    """The store ``PHOTO_STORE`` names: the database through ``session`` (the unit of work that
    writes, or the session that reads), or the folder ``media_dir``."""
    if kind == DATABASE:
        return DatabasePhotoStore(session)
    if kind == DIRECTORY:
        if not media_dir:
            raise ValueError("PHOTO_STORE=directory needs MEDIA_DIR")
        return DirectoryPhotoStore(media_dir)
    raise ValueError(f"PHOTO_STORE must be one of {', '.join(PHOTO_STORES)}, not {kind!r}")


def check_photo_store_setting(kind: str) -> None:
    """Refuses an unknown ``PHOTO_STORE`` at start-up, not at the first photo."""
    if kind not in PHOTO_STORES:
        raise ValueError(
            f"CITYRELAY_PHOTO_STORE must be one of {', '.join(PHOTO_STORES)}, not {kind!r}"
        )


def store_photos(store: PhotoStore, photos: Sequence[UploadedPhoto]) -> None:
    """Every photo of a request stored, each once, in the order of their hashes: two requests
    that store the same photos in another order then wait for each other on PostgreSQL instead
    of deadlocking."""
    unique = {photo.sha256: photo for photo in photos}
    for sha256 in sorted(unique):
        photo = unique[sha256]
        store.put(sha256, photo.content_type, photo.data)


# ---------------------------------------------------------------- a media folder's files


IMPORTED = "imported"
ALREADY_STORED = "already stored"


@dataclass
class MediaImport:
    """What ``cityrelay import-media`` did with a folder: files stored, files found stored
    already, and the files left out, with the reason."""

    imported: int = 0
    already_stored: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)


def media_folder_files(folder: str | Path) -> Iterator[Path]:
    """The files of a media folder, by name (what a photo store wrote, and whatever else is
    there: ``import_media_file`` tells them apart)."""
    for path in sorted(Path(folder).iterdir()):
        if path.is_file():
            yield path


def import_media_file(store: PhotoStore, path: Path) -> tuple[str, str | None]:
    """One file of a media folder put in ``store``: ``(IMPORTED or ALREADY_STORED, None)``, or
    ``("skipped", why)`` for a file that is no photo the folder store could have written (a
    temporary file, a name not ``<sha256>.<extension>``, bytes that do not hash to the name or
    are no image of its kind). A photo already in the store is not read again."""
    parsed = parse_photo_name(path.name)
    if parsed is None:
        return "skipped", "not named <sha256>.<jpg|png|webp|heic>"
    if store.exists(path.name):
        return ALREADY_STORED, None
    sha256, extension = parsed
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        return "skipped", "its bytes do not hash to its name"
    kind = sniff_image_type(data[:16])
    if kind is None or kind[1] != extension:
        return "skipped", f"not a {extension.upper()} image"
    stored = store.put(sha256, kind[0], data)
    return (IMPORTED if stored else ALREADY_STORED), None
