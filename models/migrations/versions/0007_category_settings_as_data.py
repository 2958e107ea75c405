"""category settings as data

Each category's questions (Open311 service attributes, with their allowed values) and search
keywords move from code into tables that admins change, versioned like the routing rules. The
categories already in the database get the definitions the code held until now, read from the
seed's defaults file, and a first settings version records them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 15:25:22.365274
"""

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import op

import models.base

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The one copy of the defaults; the seed loads the same file into a fresh database.
DEFAULTS = Path(__file__).resolve().parents[2] / "seed" / "category_settings.json"


def upgrade() -> None:
    versions = op.create_table(
        "category_settings_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", models.base.UTCDateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=True),
        sa.Column("settings", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_settings_versions")),
    )
    attributes = op.create_table(
        "category_attributes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("datatype", sa.String(length=20), nullable=False),
        sa.Column("required", sa.Boolean(), nullable=False),
        sa.Column("description_zh", sa.String(length=200), nullable=False),
        sa.Column("description_en", sa.String(length=200), nullable=False),
        sa.Column("datatype_description", sa.String(length=200), nullable=False),
        sa.Column("minimum", sa.Float(), nullable=True),
        sa.Column("maximum", sa.Float(), nullable=True),
        sa.CheckConstraint(
            "datatype IN ('string', 'number', 'datetime', 'text', 'singlevaluelist', "
            "'multivaluelist')",
            name=op.f("ck_category_attributes_datatype"),
        ),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_category_attributes_category_code_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_attributes")),
        sa.UniqueConstraint(
            "category_code", "code", name="uq_category_attributes_category_and_code"
        ),
    )
    keywords = op.create_table(
        "category_keywords",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("word", sa.String(length=50), nullable=False),
        sa.Column("lang", sa.String(length=10), nullable=True),
        sa.ForeignKeyConstraint(
            ["category_code"],
            ["categories.code"],
            name=op.f("fk_category_keywords_category_code_categories"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_keywords")),
        sa.UniqueConstraint("category_code", "word", name="uq_category_keywords_category_word"),
    )
    values = op.create_table(
        "category_attribute_values",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("attribute_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["attribute_id"],
            ["category_attributes.id"],
            name=op.f("fk_category_attribute_values_attribute_id_category_attributes"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_category_attribute_values")),
        sa.UniqueConstraint(
            "attribute_id", "key", name="uq_category_attribute_values_attribute_key"
        ),
    )
    _load_defaults(versions, attributes, keywords, values)


def _load_defaults(
    versions: sa.Table, attributes: sa.Table, keywords: sa.Table, values: sa.Table
) -> None:
    """Today's definitions for the categories this database already has (a fresh database has
    none yet: the seed loads the same file once the taxonomy is in)."""
    bind = op.get_bind()
    codes = sorted(bind.execute(sa.text("SELECT code FROM categories")).scalars())
    if not codes:
        return
    defaults: dict[str, Any] = json.loads(DEFAULTS.read_text(encoding="utf-8"))
    snapshot = {code: defaults.get(code, {"attributes": [], "keywords": []}) for code in codes}
    for code, spec in snapshot.items():
        for position, attribute in enumerate(spec["attributes"]):
            inserted = bind.execute(
                attributes.insert().values(
                    category_code=code,
                    position=position,
                    **{name: value for name, value in attribute.items() if name != "values"},
                )
            )
            (attribute_id,) = inserted.inserted_primary_key
            choices = [
                {"attribute_id": attribute_id, "position": index, **choice}
                for index, choice in enumerate(attribute["values"])
            ]
            if choices:
                bind.execute(values.insert(), choices)
        words = [
            {"category_code": code, "position": position, **keyword}
            for position, keyword in enumerate(spec["keywords"])
        ]
        if words:
            bind.execute(keywords.insert(), words)
    bind.execute(
        versions.insert().values(
            created_at=datetime.now(UTC),
            actor="system:migration",
            note="category settings as first loaded (0007)",
            category_code=None,
            settings=snapshot,
        )
    )


def downgrade() -> None:
    op.drop_table("category_attribute_values")
    op.drop_table("category_keywords")
    op.drop_table("category_attributes")
    op.drop_table("category_settings_versions")
