"""me-too search index

The "me too" search looks for the open cases of a report's category in a box around it, received
within the category's window. It joined every case of the category to its reports to find when
each was first reported; now a case keeps that time itself (``cases.first_received_at``, filled
here from its reports, or its opening time for a case without any), and a partial index on the
open cases, by category, latitude, longitude and that time, answers the search alone
(benchmarks/bench_merge_search.py).

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-08 09:00:00.000000
"""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0020"
# 0019 is being written alongside this one; the two are put in a line when both are in.
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The case statuses a "me too" report may join (models.entities.OPEN_CASE_STATUSES when this
# was written; a migration keeps its own copy).
OPEN_STATUSES = "status IN ('triage', 'routed', 'accepted', 'in_progress', 'waiting')"


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_received_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
    op.execute(
        "UPDATE cases SET first_received_at = COALESCE("
        "(SELECT min(reports.received_at) FROM reports WHERE reports.case_id = cases.id), "
        "opened_at)"
    )
    with _table_rebuild_allowed(), op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.alter_column(
            "first_received_at",
            existing_type=models.base.UTCDateTime(timezone=True),
            nullable=False,
        )
    op.create_index(
        "ix_cases_open_nearby",
        "cases",
        ["category_code", "lat", "lon", "first_received_at", "status"],
        postgresql_include=["id"],
        postgresql_where=sa.text(OPEN_STATUSES),
        sqlite_where=sa.text(OPEN_STATUSES),
    )


@contextmanager
def _table_rebuild_allowed() -> Iterator[None]:
    """SQLite has no ALTER COLUMN: batch mode copies the table, drops it and renames the copy,
    and the drop fails while reports, events and outbox rows refer to its rows. SQLite's own
    recipe: foreign keys off for the rebuild (a setting only changed between transactions),
    then a check that every reference still finds its row, then on again. Nothing to do on
    PostgreSQL, which alters the column in place."""
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        yield
        return
    bind.exec_driver_sql("COMMIT")
    bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
    bind.exec_driver_sql("BEGIN")
    try:
        yield
        broken = bind.exec_driver_sql("PRAGMA foreign_key_check").all()
        if broken:
            raise RuntimeError(f"references without their row after rebuilding cases: {broken}")
    finally:
        bind.exec_driver_sql("COMMIT")
        bind.exec_driver_sql("PRAGMA foreign_keys=ON")
        bind.exec_driver_sql("BEGIN")


def downgrade() -> None:
    op.drop_index("ix_cases_open_nearby", table_name="cases")
    with _table_rebuild_allowed(), op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("first_received_at")
