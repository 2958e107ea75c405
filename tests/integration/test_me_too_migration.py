"""Migration 0020 gives every existing case the time its first report was received (or its
opening time, for a case without reports), and the index of open cases the "me too" search
reads; its downgrade takes both away again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import command

from models.base import UTCDateTime
from models.migrate import alembic_config, upgrade
from models.session import make_engine

OPENED = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)

reporters = sa.table(
    "reporters",
    sa.column("id"),
    sa.column("display_name"),
    sa.column("occupation"),
    sa.column("platform"),
    sa.column("created_at", UTCDateTime()),
)
cases = sa.table(
    "cases",
    sa.column("id"),
    sa.column("status"),
    sa.column("classification", sa.JSON()),
    sa.column("routing", sa.JSON()),
    sa.column("lat"),
    sa.column("lon"),
    sa.column("opened_at", UTCDateTime()),
    sa.column("updated_at", UTCDateTime()),
)
reports = sa.table(
    "reports",
    sa.column("id"),
    sa.column("reporter_id"),
    sa.column("channel"),
    sa.column("text"),
    sa.column("language"),
    sa.column("address"),
    sa.column("fingerprint"),
    sa.column("state"),
    sa.column("received_at", UTCDateTime()),
    sa.column("case_id"),
)


def test_existing_cases_get_their_first_report_time_and_the_index(scratch_url: str) -> None:
    upgrade(scratch_url, "0018")
    engine = make_engine(scratch_url)
    with engine.begin() as connection:
        connection.execute(
            reporters.insert(),
            [{"id": 1, "display_name": "骑手", "occupation": "rider", "platform": "",
              "created_at": OPENED}],
        )  # fmt: skip
        connection.execute(
            cases.insert(),
            [
                {"id": case_id, "status": "routed", "classification": {}, "routing": {},
                 "lat": 31.15, "lon": 121.74, "opened_at": OPENED + timedelta(hours=case_id),
                 "updated_at": OPENED}
                for case_id in (1, 2)
            ],
        )  # fmt: skip
        # case 1: the later report has the lower id (processed out of order); case 2: none
        connection.execute(
            reports.insert(),
            [
                {"id": report_id, "reporter_id": 1, "channel": "api", "text": "满了",
                 "language": "zh", "address": "", "fingerprint": "x", "state": "processed",
                 "received_at": OPENED - timedelta(minutes=minutes), "case_id": 1}
                for report_id, minutes in ((1, 5), (2, 50), (3, 20))
            ],
        )  # fmt: skip
    engine.dispose()

    upgrade(scratch_url)
    engine = make_engine(scratch_url)
    try:
        with engine.connect() as connection:
            first = dict(
                connection.execute(
                    sa.select(
                        sa.column("id"), sa.column("first_received_at", UTCDateTime())
                    ).select_from(sa.table("cases"))
                ).all()
            )
            indexes = {ix["name"] for ix in sa.inspect(connection).get_indexes("cases")}
        assert first == {1: OPENED - timedelta(minutes=50), 2: OPENED + timedelta(hours=2)}
        assert "ix_cases_open_nearby" in indexes

        command.downgrade(alembic_config(scratch_url), "0018")
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            columns = {column["name"] for column in inspector.get_columns("cases")}
            indexes = {ix["name"] for ix in inspector.get_indexes("cases")}
        assert "first_received_at" not in columns and "ix_cases_open_nearby" not in indexes
    finally:
        engine.dispose()
