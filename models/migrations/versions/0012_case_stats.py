"""case statistics

One row per case with what its events say for the statistics (routing.statistics.case_stats):
its dates, on-time flags, rework and the hours each step took. Rows are written in the
transaction of each event; ``cityrelay migrate`` fills the rows of cases that have none (every
case, right after this revision), and ``cityrelay rebuild-rollups`` rebuilds them all.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 07:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _moment(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, models.base.UTCDateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "case_stats",
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=True),
        sa.Column("category_code", sa.String(length=40), nullable=True),
        sa.Column("first_report_id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=20), nullable=False),
        sa.Column("occupation", sa.String(length=20), nullable=False),
        sa.Column("reports_count", sa.Integer(), nullable=False),
        _moment("reported_at", nullable=False),
        sa.Column("reported_day", sa.Date(), nullable=False),
        sa.Column("reported_week", sa.Date(), nullable=False),
        sa.Column("reported_month", sa.Date(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("closure", sa.String(length=20), nullable=True),
        _moment("due_at"),
        _moment("routed_at"),
        _moment("accepted_at"),
        _moment("handled_at"),
        _moment("resolved_at"),
        _moment("closed_at"),
        sa.Column("handled_on_time", sa.Boolean(), nullable=True),
        sa.Column("closed_on_time", sa.Boolean(), nullable=True),
        sa.Column("extended", sa.Boolean(), nullable=False),
        sa.Column("confirmed", sa.Boolean(), nullable=False),
        sa.Column("reopened", sa.Boolean(), nullable=False),
        sa.Column("rework_count", sa.Integer(), nullable=False),
        sa.Column("accept_hours", sa.Float(), nullable=True),
        sa.Column("accept_working_hours", sa.Float(), nullable=True),
        sa.Column("resolve_hours", sa.Float(), nullable=True),
        sa.Column("resolve_working_hours", sa.Float(), nullable=True),
        sa.Column("close_hours", sa.Float(), nullable=True),
        sa.Column("close_working_hours", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_case_stats_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_case_stats_category_code_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["first_report_id"], ["reports.id"], name=op.f("fk_case_stats_first_report_id_reports")
        ),
        sa.ForeignKeyConstraint(
            ["office_id"], ["offices.id"], name=op.f("fk_case_stats_office_id_offices")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_stats")),
    )
    with op.batch_alter_table("case_stats", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_stats_category_code"), ["category_code"], unique=False
        )
        batch_op.create_index(
            "ix_case_stats_office_reported_day", ["office_id", "reported_day"], unique=False
        )
        batch_op.create_index(
            "ix_case_stats_reported_day_office", ["reported_day", "office_id"], unique=False
        )


def downgrade() -> None:
    op.drop_table("case_stats")
