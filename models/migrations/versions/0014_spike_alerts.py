"""spike alerts

The spikes announced on the ``stats.spike`` topic: one row per community, category and local
day, so the detecting task never announces one twice.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 13:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "spike_alerts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("office_id", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("announced_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_24h", sa.Integer(), nullable=False),
        sa.Column("baseline_per_day", sa.Float(), nullable=False),
        sa.Column("threshold", sa.Float(), nullable=False),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_spike_alerts_category_code_categories"),
        ),
        sa.ForeignKeyConstraint(
            ["office_id"], ["offices.id"], name=op.f("fk_spike_alerts_office_id_offices")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_spike_alerts")),
        sa.UniqueConstraint(
            "office_id", "category_code", "day", name="uq_spike_alerts_office_category_day"
        ),
    )
    with op.batch_alter_table("spike_alerts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_spike_alerts_announced_at"), ["announced_at"], unique=False
        )


def downgrade() -> None:
    op.drop_table("spike_alerts")
