"""Category settings became data in migration 0007: a database that already had its categories
gets today's definitions from the migration, a fresh one from the seed, and both alike."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from models.category_settings import current_settings, latest_settings_version
from models.entities import CategorySettingsVersion
from models.migrate import upgrade
from models.seed import (
    category_settings_defaults,
    load_category_settings,
    load_taxonomy,
    taxonomy_rows,
)
from models.session import make_engine, make_session_factory, unit_of_work
from services.category_settings import attributes_for


def _insert_categories_as_0006_knew_them(url: str) -> None:
    """The taxonomy as a database at revision 0006 holds it (plain rows: the models describe
    the newest schema)."""
    engine = make_engine(url)
    with engine.begin() as connection:
        for position, row in enumerate(taxonomy_rows()):
            connection.execute(
                sa.text(
                    "INSERT INTO categories (code, name_zh, name_en, group_zh, standard_codes,"
                    " time_limit, time_limit_source, urgent, handled_by, position)"
                    " VALUES (:code, :name_zh, :name_en, :group_zh, '', NULL, '', false, '',"
                    " :position)"
                ),
                {
                    "code": row["code"],
                    "name_zh": row["name_zh"],
                    "name_en": row["name_en"],
                    "group_zh": row["group_zh"],
                    "position": position,
                },
            )
    engine.dispose()


def _session(url: str) -> tuple[sa.Engine, Session]:
    engine = make_engine(url)
    return engine, make_session_factory(engine, writer=True)()


def test_migration_gives_an_existing_database_todays_definitions(scratch_url: str) -> None:
    upgrade(scratch_url, "0006")
    _insert_categories_as_0006_knew_them(scratch_url)
    upgrade(scratch_url)

    engine, session = _session(scratch_url)
    try:
        (cover_state,) = attributes_for(session, "manhole_cover")
        assert cover_state.code == "cover_state" and cover_state.datatype == "singlevaluelist"
        assert cover_state.required is True
        assert [c.key for c in cover_state.values] == ["missing", "broken", "sunk", "noisy"]
        assert cover_state.values[1].name_zh == "破损" and cover_state.values[1].name_en == "Broken"

        depth, passable = attributes_for(session, "waterlogging")
        assert (depth.code, depth.datatype, depth.required) == ("depth_cm", "number", True)
        assert (depth.minimum, depth.maximum) == (0, 300)
        assert depth.datatype_description == "centimetres, 0 to 300"
        assert passable.required is False and [c.key for c in passable.values] == ["yes", "no"]
        (bin_count,) = attributes_for(session, "bin_overflow")
        assert (bin_count.minimum, bin_count.maximum) == (1, 50)
        assert attributes_for(session, "other") == ()

        settings = current_settings(session)
        assert settings == category_settings_defaults()
        assert [k["word"] for k in settings["waterlogging"]["keywords"]] == [
            "积水",
            "内涝",
            "水淹",
            "flooding",
            "standing water",
        ]
        (version,) = session.scalars(select(CategorySettingsVersion)).all()
        assert version.actor == "system:migration" and version.settings == settings
    finally:
        session.close()
        engine.dispose()

    # The seed finds every category settled and changes nothing.
    engine = make_engine(scratch_url)
    try:
        with unit_of_work(make_session_factory(engine, writer=True)) as session:
            assert load_category_settings(session) == 0
            assert latest_settings_version(session).actor == "system:migration"
    finally:
        engine.dispose()


def test_fresh_database_gets_the_same_defaults_from_the_seed(scratch_url: str) -> None:
    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    sessions = make_session_factory(engine, writer=True)
    try:
        with unit_of_work(sessions) as session:
            # a fresh database has no categories, so the migration loaded nothing
            assert latest_settings_version(session) is None
            load_taxonomy(session)
        with unit_of_work(sessions) as session:
            assert current_settings(session) == category_settings_defaults()
            first = latest_settings_version(session)
            assert first is not None and first.actor == "system:seed"
            assert first.settings == category_settings_defaults()
            load_taxonomy(session)
            assert load_category_settings(session) == 0
            assert latest_settings_version(session).id == first.id
    finally:
        engine.dispose()
