"""exports in the database

A finished case-list export's file is kept in ``export_chunks`` (pieces of about 1 MiB, keyed by
the export and the offset of their first byte) instead of a file in one machine's export folder,
so that any web machine serves an export whichever worker wrote it. ``exports.filename``, the
name of that file, goes; ``exports.size_bytes`` is the stored file's length.

Files already in an export folder are not moved here: an export finished before this migration
has no stored file, and its download answers 404, as it did for a file that was gone. Exports
are asked for again in a moment (the same request gets a new one after ten minutes).

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-08 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # On SQLite batch mode rebuilds the table; nothing refers to exports yet, so the rebuild
    # needs no foreign-key dance (export_chunks is made after).
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("size_bytes", sa.BigInteger(), nullable=True))
        batch_op.drop_column("filename")
    op.create_table(
        "export_chunks",
        sa.Column("export_id", sa.Integer(), nullable=False),
        sa.Column("start", sa.BigInteger(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_export_chunks_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("export_id", "start", name=op.f("pk_export_chunks")),
    )


def downgrade() -> None:
    op.drop_table("export_chunks")
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.add_column(sa.Column("filename", sa.String(length=100), nullable=True))
        batch_op.drop_column("size_bytes")
