"""monthly statistics

``stats_months`` adds the ``case_stats`` rows up per month, office and category, so that the
figures of a year read a few thousand rows instead of half a million cases (benchmarks/
bench_stats.py); ``case_report_months`` keeps what each case added to the received counts. Both
are filled by ``cityrelay migrate`` right after this revision, from the cases and their reports.
An index on ``case_stats.due_at`` finds the few cases whose due time is still ahead: the only
ones whose figures change with the clock.

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
    op.create_table(
        "case_report_months",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("merged", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_report_months_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("case_id", "month", name=op.f("pk_case_report_months")),
    )
    op.create_index(
        "ix_case_stats_due_at",
        "case_stats",
        ["due_at"],
        postgresql_include=["reported_day", "office_id", "category_code", "status", "handled_at"],
    )


def downgrade() -> None:
    op.drop_index("ix_case_stats_due_at", table_name="case_stats")
    op.drop_table("case_report_months")
    op.drop_table("stats_months")
