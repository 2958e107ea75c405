"""casework to the end

What offices need to work a case to its end and reporters to see what it earned them: the
overdue flag and the escalation to the office above on cases; the points ledger (the counter on
reporters goes: a balance is the sum of a reporter's ledger entries, and no points were ever
awarded before this revision); console users with argon2 password hashes; response templates
for public notes; and reporters' "still fixed?" answers about cases closed as fixed.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 20:30:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "response_templates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=True),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title_zh", sa.String(length=100), nullable=False),
        sa.Column("title_en", sa.String(length=100), nullable=False),
        sa.Column("text_zh", sa.Text(), nullable=False),
        sa.Column("text_en", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_response_templates_category_code_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_response_templates")),
    )
    with op.batch_alter_table("response_templates", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_response_templates_category_code"), ["category_code"], unique=False
        )

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(length=60), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("must_change_password", sa.Boolean(), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("display_name", sa.String(length=100), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_login_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.Column("disabled_at", models.base.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint("role IN ('staff', 'supervisor', 'admin')", name=op.f("ck_users_role")),
        sa.ForeignKeyConstraint(
            ["office_id"], ["offices.id"], name=op.f("fk_users_office_id_offices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_office_id"), ["office_id"], unique=False)

    op.create_table(
        "points_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=True),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("reason", sa.String(length=40), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.CheckConstraint("kind IN ('award', 'reversal')", name=op.f("ck_points_entries_kind")),
        sa.CheckConstraint("points <> 0", name=op.f("ck_points_entries_points_not_zero")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_points_entries_case_id_cases")
        ),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_points_entries_report_id_reports")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["reporters.id"], name=op.f("fk_points_entries_reporter_id_reporters")
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["points_entries.id"],
            name=op.f("fk_points_entries_reverses_id_points_entries"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_entries")),
        sa.UniqueConstraint("reverses_id", name="uq_points_entries_reverses_id"),
    )
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_points_entries_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_points_entries_reporter_id"), ["reporter_id"], unique=False
        )

    op.create_table(
        "rechecks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.Integer(), nullable=False),
        sa.Column("reporter_id", sa.Integer(), nullable=False),
        sa.Column("closed_event_id", sa.Integer(), nullable=False),
        sa.Column("report_id", sa.Integer(), nullable=True),
        sa.Column("still_fixed", sa.Boolean(), nullable=False),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], name=op.f("fk_rechecks_case_id_cases")),
        sa.ForeignKeyConstraint(
            ["closed_event_id"],
            ["case_events.id"],
            name=op.f("fk_rechecks_closed_event_id_case_events"),
        ),
        sa.ForeignKeyConstraint(
            ["report_id"], ["reports.id"], name=op.f("fk_rechecks_report_id_reports")
        ),
        sa.ForeignKeyConstraint(
            ["reporter_id"], ["reporters.id"], name=op.f("fk_rechecks_reporter_id_reporters")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rechecks")),
        sa.UniqueConstraint(
            "case_id", "reporter_id", "closed_event_id", name="uq_rechecks_case_reporter_closing"
        ),
    )
    with op.batch_alter_table("rechecks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rechecks_case_id"), ["case_id"], unique=False)

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("overdue_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("escalated_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("escalated_office_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_overdue_at"), ["overdue_at"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_cases_escalated_office_id_offices"),
            "offices",
            ["escalated_office_id"],
            ["id"],
        )

    with op.batch_alter_table("reporters", schema=None) as batch_op:
        batch_op.drop_column("points")


def downgrade() -> None:
    with op.batch_alter_table("reporters", schema=None) as batch_op:
        batch_op.add_column(sa.Column("points", sa.INTEGER(), server_default="0", nullable=False))

    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_cases_escalated_office_id_offices"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_cases_overdue_at"))
        batch_op.drop_column("escalated_office_id")
        batch_op.drop_column("escalated_at")
        batch_op.drop_column("overdue_at")

    with op.batch_alter_table("rechecks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rechecks_case_id"))

    op.drop_table("rechecks")
    with op.batch_alter_table("points_entries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_points_entries_reporter_id"))
        batch_op.drop_index(batch_op.f("ix_points_entries_case_id"))

    op.drop_table("points_entries")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_office_id"))

    op.drop_table("users")
    with op.batch_alter_table("response_templates", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_response_templates_category_code"))

    op.drop_table("response_templates")
