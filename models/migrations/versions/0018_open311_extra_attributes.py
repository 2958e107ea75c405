"""open311 extra attributes

``reports.extra_attributes`` keeps the ``attribute[…]`` values an Open311 client sent that are not
questions of the report's service (FixMyStreet's ``report_url`` and ``fixmystreet_id``, say), so
such a request is accepted instead of refused. Null when there were none.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 19:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("extra_attributes", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("reports", schema=None) as batch_op:
        batch_op.drop_column("extra_attributes")
