"""key expiry

``api_keys.expires_at``: a key given an expiry (`cityrelay create-key --expires-in-days N`)
answers 401 from then on, like a revoked one. Null, as for every key made before: it never
expires.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 19:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("expires_at", models.base.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("expires_at")
