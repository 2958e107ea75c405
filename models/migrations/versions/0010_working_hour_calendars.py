"""working-hour calendars

Office hours, public holidays and adjusted working days (调休) move from code into tables:
calendars with their weekly hours and exceptional days, and the calendar each office keeps
(none: its parent's, at the top the calendar named "default"). The seed's calendars, with the
published 2026 arrangement, are loaded from the seed file, so every database has a default.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 17:30:00.000000
"""

import json
from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one copy of the seed calendars; the seed reads the same file (models.calendars).
SEED = Path(__file__).resolve().parents[2] / "seed" / "calendars.json"


def upgrade() -> None:
    calendars = op.create_table(
        "calendars",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=40), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("weekly_hours", sa.JSON(), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendars")),
        sa.UniqueConstraint("name", name=op.f("uq_calendars_name")),
    )
    days = op.create_table(
        "calendar_days",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("calendar_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.CheckConstraint("kind IN ('holiday', 'workday')", name=op.f("ck_calendar_days_kind")),
        sa.ForeignKeyConstraint(
            ["calendar_id"],
            ["calendars.id"],
            name=op.f("fk_calendar_days_calendar_id_calendars"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_calendar_days")),
        sa.UniqueConstraint("calendar_id", "day", name="uq_calendar_days_calendar_day"),
    )
    with op.batch_alter_table("offices", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calendar_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_offices_calendar_id"), ["calendar_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_offices_calendar_id_calendars"), "calendars", ["calendar_id"], ["id"]
        )
    _load_seed(calendars, days)


def _load_seed(calendars: sa.Table, days: sa.Table) -> None:
    bind = op.get_bind()
    for spec in json.loads(SEED.read_text(encoding="utf-8"))["calendars"]:
        inserted = bind.execute(
            calendars.insert().values(
                name=spec["name"],
                timezone=spec["timezone"],
                weekly_hours=spec["weekly_hours"],
                updated_at=datetime.now(UTC),
            )
        )
        (calendar_id,) = inserted.inserted_primary_key
        rows = [
            {
                "calendar_id": calendar_id,
                "day": date.fromisoformat(day["date"]),
                "kind": day["kind"],
                "name": day.get("name", ""),
            }
            for day in spec["days"]
        ]
        if rows:
            bind.execute(days.insert(), rows)


def downgrade() -> None:
    with op.batch_alter_table("offices", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_offices_calendar_id_calendars"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_offices_calendar_id"))
        batch_op.drop_column("calendar_id")
    op.drop_table("calendar_days")
    op.drop_table("calendars")
