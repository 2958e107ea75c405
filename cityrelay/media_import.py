"""`cityrelay import-media`: the photos of a media folder (where photos were kept before they
went to the database) copied into ``photo_blobs``, one transaction per file, so a large folder
is never one huge transaction and a run that stops half-way is simply run again."""

from __future__ import annotations

from pathlib import Path

from models.session import make_engine, make_session_factory, unit_of_work
from services.photo_store import (
    ALREADY_STORED,
    IMPORTED,
    DatabasePhotoStore,
    MediaImport,
    import_media_file,
    media_folder_files,
)


def import_media(database_url: str, folder: str | Path) -> MediaImport:
    """Every photo file of ``folder`` in the database's photo store (see
    ``services.photo_store.import_media_file`` for what is left out). Safe to repeat: what is
    stored already is not read again. A missing folder imports nothing."""
    summary = MediaImport()
    if not Path(folder).is_dir():
        return summary
    engine = make_engine(database_url)
    try:
        writers = make_session_factory(engine, writer=True)
        for path in media_folder_files(folder):
            with unit_of_work(writers) as session:
                outcome, why = import_media_file(DatabasePhotoStore(session), path)
            if outcome == IMPORTED:
                summary.imported += 1
            elif outcome == ALREADY_STORED:
                summary.already_stored += 1
            else:
                summary.skipped.append((path.name, why or outcome))
    finally:
        engine.dispose()
    return summary
