"""notifications through the outbox

The outbox is read now: webhook subscriptions say who gets which notifications; a relay claims
due rows (a lease while it sends), retries with backoff and puts a row that failed too often in
the dead-letter state ("dead"), from which an admin replays it (each replay recorded). A row no
subscription wanted is "skipped".

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 16:49:36.873657
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("pending", "sending", "delivered", "skipped", "dead")
OLD_STATUSES = ("pending", "delivered")


def _status_in(values: tuple[str, ...]) -> str:
    return f"status IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("secret", sa.String(length=256), nullable=False),
        sa.Column("topics", sa.JSON(), nullable=False),
        sa.Column("recipients", sa.JSON(), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(length=100), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_table(
        "outbox_replays",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), nullable=False),
        sa.Column("at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("attempts_before", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["outbox_id"],
            ["outbox.id"],
            name=op.f("fk_outbox_replays_outbox_id_outbox"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox_replays")),
    )
    with op.batch_alter_table("outbox_replays", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_outbox_replays_outbox_id"), ["outbox_id"], unique=False
        )

    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("last_attempt_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("last_error", sa.Text(), server_default="", nullable=False))
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("lease_expires_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("dead_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(
            sa.Column("delivered_to", sa.JSON(), server_default="[]", nullable=False)
        )
        batch_op.create_index(
            "ix_outbox_status_next_attempt_at", ["status", "next_attempt_at"], unique=False
        )
        # the dead-letter state and the others the relay needs
        batch_op.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch_op.create_check_constraint("status", _status_in(STATUSES))


def downgrade() -> None:
    # Rows in the new states go back to the two the old schema knew: still to send, or done.
    op.execute("UPDATE outbox SET status = 'pending' WHERE status IN ('sending', 'dead')")
    op.execute("UPDATE outbox SET status = 'delivered' WHERE status = 'skipped'")
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_outbox_status"), type_="check")
        batch_op.create_check_constraint("status", _status_in(OLD_STATUSES))
        batch_op.drop_index("ix_outbox_status_next_attempt_at")
        batch_op.drop_column("delivered_to")
        batch_op.drop_column("dead_at")
        batch_op.drop_column("lease_expires_at")
        batch_op.drop_column("claim_token")
        batch_op.drop_column("last_error")
        batch_op.drop_column("last_attempt_at")

    with op.batch_alter_table("outbox_replays", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_outbox_replays_outbox_id"))

    op.drop_table("outbox_replays")
    op.drop_table("webhook_subscriptions")
