"""Migration 0021 stores exports' files in the database: ``export_chunks`` (deleted with their
export), ``exports.size_bytes`` in place of ``exports.filename``, the exports already there kept
with their status check; its downgrade puts the file name back."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy.exc import IntegrityError

from models.base import UTCDateTime
from models.migrate import alembic_config, upgrade
from models.session import make_engine

ASKED = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)

EXPORT_COLUMNS = ("id", "kind", "requested_by", "status", "rows")
exports = sa.table(
    "exports",
    *map(sa.column, EXPORT_COLUMNS),
    sa.column("params", sa.JSON()),
    sa.column("created_at", UTCDateTime()),
)
# exports as 0020 made them, with the name of the file in the export folder
exports_with_filename = sa.table(
    "exports",
    *map(sa.column, EXPORT_COLUMNS),
    sa.column("params", sa.JSON()),
    sa.column("created_at", UTCDateTime()),
    sa.column("filename"),
)
export_chunks = sa.table(
    "export_chunks", sa.column("export_id"), sa.column("start"), sa.column("data")
)


def export_row(export_id: int, status: str) -> dict[str, object]:
    return {"id": export_id, "kind": "cases", "params": {}, "requested_by": "key:1",
            "status": status, "rows": 3, "created_at": ASKED}  # fmt: skip


def columns_of(connection: sa.Connection, table: str) -> set[str]:
    return {column["name"] for column in sa.inspect(connection).get_columns(table)}


def test_exports_move_into_the_database_and_back(scratch_url: str) -> None:
    upgrade(scratch_url, "0020")
    engine = make_engine(scratch_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                exports_with_filename.insert().values(**export_row(1, "done"), filename="a.csv")
            )

        upgrade(scratch_url)
        with engine.begin() as connection:
            assert "size_bytes" in columns_of(connection, "exports")
            assert "filename" not in columns_of(connection, "exports")
            # the export finished as a file is kept, with no stored file (its download: 404)
            kept = connection.execute(sa.text("SELECT status, size_bytes FROM exports")).one()
            assert tuple(kept) == ("done", None)
            connection.execute(exports.insert().values(**export_row(2, "done")))
            connection.execute(
                export_chunks.insert(),
                [{"export_id": 2, "start": 0, "data": b"id\r\n"},
                 {"export_id": 2, "start": 4, "data": b"7\r\n"}],
            )  # fmt: skip
        with engine.begin() as connection:
            connection.execute(sa.text("DELETE FROM exports WHERE id = 2"))
            left = connection.scalar(sa.text("SELECT count(*) FROM export_chunks"))
            assert left == 0  # the pieces go with their export
        # the table rebuilt on SQLite still checks the status
        with pytest.raises(IntegrityError), engine.begin() as connection:
            connection.execute(exports.insert().values(**export_row(3, "lost")))

        command.downgrade(alembic_config(scratch_url), "0020")
        with engine.connect() as connection:
            assert "export_chunks" not in sa.inspect(connection).get_table_names()
            assert "filename" in columns_of(connection, "exports")
            assert "size_bytes" not in columns_of(connection, "exports")
            assert connection.scalar(sa.text("SELECT count(*) FROM exports")) == 1
    finally:
        engine.dispose()
