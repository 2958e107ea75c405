"""case workflow

Cases go on past "routed": accepted, in_progress, waiting, resolved and closed, a closed case
with its closure. Each action raises the case's version (optimistic concurrency); "accept" sets
its assignee. API keys may be a supervisor's.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("triage", "routed", "accepted", "in_progress", "waiting", "resolved", "closed")
OLD_STATUSES = ("triage", "routed")
CLOSURES = ("fixed", "duplicate", "invalid", "not_responsible", "no_further_action")
KEY_ROLES = ("reporter", "office", "supervisor", "admin")
OLD_KEY_ROLES = ("reporter", "office", "admin")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("closure", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("assignee", sa.String(length=100), nullable=True))
        batch_op.create_index(batch_op.f("ix_cases_assignee"), ["assignee"], unique=False)
        batch_op.drop_constraint(op.f("ck_cases_status"), type_="check")
        batch_op.create_check_constraint("status", _in("status", STATUSES))
        batch_op.create_check_constraint("closure", _in("closure", CLOSURES))
        batch_op.create_check_constraint(
            "closure_when_closed", "(status = 'closed') = (closure IS NOT NULL)"
        )
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_keys_role"), type_="check")
        batch_op.create_check_constraint("role", _in("role", KEY_ROLES))


def downgrade() -> None:
    # The old schema knows only cases waiting in a queue: every case that got further goes back
    # to its office's queue, and a supervisor's key becomes its office's staff key.
    op.execute(
        "UPDATE cases SET status = 'routed', closure = NULL "
        "WHERE status NOT IN ('triage', 'routed') AND office_id IS NOT NULL"
    )
    op.execute(
        "UPDATE cases SET status = 'triage', closure = NULL "
        "WHERE status NOT IN ('triage', 'routed')"
    )
    op.execute("UPDATE api_keys SET role = 'office' WHERE role = 'supervisor'")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_keys_role"), type_="check")
        batch_op.create_check_constraint("role", _in("role", OLD_KEY_ROLES))
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_cases_closure_when_closed"), type_="check")
        batch_op.drop_constraint(op.f("ck_cases_closure"), type_="check")
        batch_op.drop_constraint(op.f("ck_cases_status"), type_="check")
        batch_op.create_check_constraint("status", _in("status", OLD_STATUSES))
        batch_op.drop_index(batch_op.f("ix_cases_assignee"))
        batch_op.drop_column("assignee")
        batch_op.drop_column("version")
        batch_op.drop_column("closure")
