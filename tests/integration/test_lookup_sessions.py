"""Look-up sessions: the caller's key is read by one statement outside any transaction on
PostgreSQL (no BEGIN, no ROLLBACK: two round trips fewer on every authenticated request), and
the pooled connection is a normal transactional one again for whoever takes it next."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from models.entities import ApiKey
from models.session import make_engine, make_lookup_session_factory, make_session_factory


def _in_transaction(session: Session) -> bool:
    driver: Any = session.connection().connection.driver_connection
    if session.get_bind().dialect.name == "postgresql":
        from psycopg.pq import TransactionStatus

        return bool(driver.info.transaction_status != TransactionStatus.IDLE)
    return bool(driver.in_transaction)


def test_a_lookup_holds_no_transaction_on_postgresql_and_leaves_none_behind(
    database_url: str,
) -> None:
    # One pooled connection, so the reader below gets the very connection the look-up used.
    engine = make_engine(database_url, pool_size=1, max_overflow=0)
    try:
        postgresql = engine.dialect.name == "postgresql"
        with make_lookup_session_factory(engine)() as lookup:
            assert lookup.scalar(select(ApiKey.id).where(ApiKey.prefix == "no-such")) is None
            assert _in_transaction(lookup) is (not postgresql)
        with make_session_factory(engine)() as reader:
            reader.execute(text("SELECT 1"))
            assert _in_transaction(reader)
            if postgresql:
                assert reader.scalar(text("SHOW transaction_isolation")) == "read committed"
    finally:
        engine.dispose()


def test_an_authenticated_request_is_answered_after_the_lookup(
    client: Any, reporter_key: str
) -> None:
    answer = client.post(
        "/api/v1/reports",
        json={"text": "路灯不亮了，晚上很黑", "lat": 31.154114, "lon": 121.737424},
        headers={"Authorization": f"Bearer {reporter_key}"},
    )
    assert answer.status_code == 202, answer.get_json()
    refused = client.post(
        "/api/v1/reports",
        json={"text": "路灯不亮了", "lat": 31.154114, "lon": 121.737424},
        headers={"Authorization": "Bearer cr_unknown_key_0000000000"},
    )
    assert refused.status_code == 401
    error = refused.get_json()["error"]
    assert error["code"] == "unauthorized"
    assert error["fields"] == {"Authorization": ["Unknown, revoked or expired key."]}
