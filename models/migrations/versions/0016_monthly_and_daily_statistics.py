"""monthly and daily statistics

``stats_months`` adds the ``case_stats`` rows up per month, office and category, so that the
figures of a year read a few thousand rows instead of half a million cases (benchmarks/
bench_stats.py); ``stats_office_months`` and ``stats_category_months`` add them up per month and
office, and per month and category, with the counts of their times per grid value, from which
medians and 90th percentiles add up; ``stats_office_days`` and ``stats_category_days`` do the same
per day, for the days of a window around its whole months; ``case_report_days`` keeps what each
case added to the received counts; ``reporter_points_years`` keeps each reporter's points per
month of a year, for the leaderboard, whose points are now those of the ledger's own days. They
are filled by ``cityrelay migrate`` right after this revision, from the cases, their reports
and the ledger. An index on ``case_stats.due_at`` finds the few cases whose due time is still
ahead: the only ones whose figures change with the clock.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-07 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COUNTS = (
    "cases", "routed", "accepted", "resolved", "closed", "closed_fixed", "closed_on_time",
    "reopened", "rework", "reworked_cases", "handled", "handled_on_time", "extended",
    "confirmed", "open_without_due", "unhandled_without_due", "unhandled_with_due",
    "first_rider", "first_courier", "first_driver", "first_citizen", "received", "merged",
)  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "stats_months",
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("office_key", sa.Integer(), nullable=False),
        sa.Column("category_key", sa.String(length=40), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
        sa.PrimaryKeyConstraint(
            "month", "office_key", "category_key", name=op.f("pk_stats_months")
        ),
    )
    for table, period, key in (
        ("stats_office_months", "month", sa.Column("office_key", sa.Integer(), nullable=False)),
        (
            "stats_category_months",
            "month",
            sa.Column("category_key", sa.String(length=40), nullable=False),
        ),
        ("stats_office_days", "day", sa.Column("office_key", sa.Integer(), nullable=False)),
        (
            "stats_category_days",
            "day",
            sa.Column("category_key", sa.String(length=40), nullable=False),
        ),
    ):
        op.create_table(
            table,
            sa.Column(period, sa.Date(), nullable=False),
            key,
            *(sa.Column(name, sa.Integer(), nullable=False) for name in COUNTS),
            sa.Column("times", sa.LargeBinary(), nullable=True),
            sa.PrimaryKeyConstraint(period, key.name, name=op.f(f"pk_{table}")),
        )
    op.create_table(
        "case_report_days",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_report_days_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "day", name=op.f("pk_case_report_days")),
    )
    op.create_table(
        "reporter_points_years",
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        *(sa.Column(f"points_{month:02d}", sa.Integer(), nullable=False) for month in range(1, 13)),
        sa.ForeignKeyConstraint(
            ["reporter_id"],
            ["reporters.id"],
            name=op.f("fk_reporter_points_years_reporter_id_reporters"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("reporter_id", "year", name=op.f("pk_reporter_points_years")),
    )
    op.create_index("ix_reporter_points_years_year", "reporter_points_years", ["year"])
    # the leaderboard counts the ledger's own days now, not the moments entries were written
    op.drop_index("ix_points_entries_at", table_name="points_entries")
    op.drop_index("ix_points_entries_case_at", table_name="points_entries")
    op.create_index(
        "ix_points_entries_day",
        "points_entries",
        ["day"],
        postgresql_include=["reporter_id", "case_id", "points"],
    )
    op.create_index(
        "ix_points_entries_case_day",
        "points_entries",
        ["case_id", "day"],
        postgresql_include=["reporter_id", "points"],
    )
    op.create_index(
        "ix_case_stats_due_at",
        "case_stats",
        ["due_at"],
        postgresql_include=["reported_day", "office_id", "category_code", "status", "handled_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_points_entries_case_day", table_name="points_entries")
    op.drop_index("ix_points_entries_day", table_name="points_entries")
    op.create_index(
        "ix_points_entries_case_at",
        "points_entries",
        ["case_id", "at"],
        postgresql_include=["reporter_id", "points"],
    )
    op.create_index(
        "ix_points_entries_at",
        "points_entries",
        ["at"],
        postgresql_include=["reporter_id", "case_id", "points"],
    )
    op.drop_index("ix_reporter_points_years_year", table_name="reporter_points_years")
    op.drop_table("reporter_points_years")
    op.drop_index("ix_case_stats_due_at", table_name="case_stats")
    op.drop_table("case_report_days")
    op.drop_table("stats_category_days")
    op.drop_table("stats_office_days")
    op.drop_table("stats_category_months")
    op.drop_table("stats_office_months")
    op.drop_table("stats_months")
