"""photo blobs

``photo_blobs`` holds the photos' bytes, keyed by their SHA-256, so that every web machine reads
them from the database they share instead of one machine's media folder. Photos already in a
media folder are not moved here (a migration knows no instance folder): `cityrelay
import-media` copies them, and can be run any number of times.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-08 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "photo_blobs",
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("content_type", sa.String(length=50), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name=op.f("pk_photo_blobs")),
    )
    if op.get_bind().dialect.name == "postgresql":
        # JPEG, PNG and WebP are compressed already: PostgreSQL would try to compress every
        # value again before moving it out of line, for nothing.
        op.execute("ALTER TABLE photo_blobs ALTER COLUMN data SET STORAGE EXTERNAL")


def downgrade() -> None:
    op.drop_table("photo_blobs")
