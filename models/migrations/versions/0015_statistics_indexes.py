"""statistics indexes

What the statistics read, found by benchmarks/bench_stats.py on a million cases: the backlog
reads only the open cases (a partial index on case_stats: three full scans became lookups), the
received count and the leaderboard join reports and points to case_stats by case and by office,
and read reports and points of a window. On PostgreSQL they carry the columns those queries need
(INCLUDE), so the rows themselves are not read; SQLite gets the plain indexes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_case_stats_open",
        "case_stats",
        ["status", "due_at"],
        postgresql_include=["reported_at", "case_id", "office_id"],
        postgresql_where=sa.text("status <> 'closed'"),
        sqlite_where=sa.text("status <> 'closed'"),
    )
    for name, table, columns, include in INDEXES:
        op.create_index(name, table, columns, postgresql_include=include)


def downgrade() -> None:
    for name, table, _columns, _include in reversed(INDEXES):
        op.drop_index(name, table_name=table)
    op.drop_index("ix_case_stats_open", table_name="case_stats")


INDEXES = (
    (
        "ix_case_stats_case_id_cover",
        "case_stats",
        ["case_id"],
        ["first_report_id", "office_id", "status", "closure"],
    ),
    (
        "ix_case_stats_office_cover",
        "case_stats",
        ["office_id"],
        ["case_id", "first_report_id", "status", "closure"],
    ),
    (
        "ix_reports_received_at_cover",
        "reports",
        ["received_at"],
        ["id", "case_id", "reporter_id", "channel"],
    ),
    (
        "ix_reports_case_received",
        "reports",
        ["case_id", "received_at"],
        ["id", "reporter_id", "channel"],
    ),
    ("ix_points_entries_at", "points_entries", ["at"], ["reporter_id", "case_id", "points"]),
    ("ix_points_entries_case_at", "points_entries", ["case_id", "at"], ["reporter_id", "points"]),
)
