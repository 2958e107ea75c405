""" "Still fixed?" checks: reporters filing near a case recently closed as fixed are offered a
check; two different reporters' "no" about the same closing reopens the case as rework."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from models.entities import CaseEvent, Recheck
from models.session import unit_of_work
from services.rechecks import RecheckCounts, recheck_counts
from tests.factories import make_case, make_reporter


def _close_event(session: Session, case_id: int, closure: str) -> int:
    event = CaseEvent(
        case_id=case_id,
        actor="test",
        action="close",
        from_status="resolved",
        to_status="closed",
        detail={"closure": closure},
    )
    session.add(event)
    session.flush()
    return event.id


def test_counts_split_the_latest_fixed_closing_from_all_closings(
    sessions: sessionmaker[Session],
) -> None:
    case = make_case(sessions)
    reporters = [make_reporter(sessions)[0] for _ in range(4)]
    with unit_of_work(sessions) as session:
        assert recheck_counts(session, case.id) == RecheckCounts(0, 0, 0, 0)
        first = _close_event(session, case.id, "fixed")
        latest = _close_event(session, case.id, "fixed")
        _close_event(session, case.id, "duplicate")  # not a closing as fixed
        answers = [(first, reporters[0], False), (first, reporters[1], True)]
        answers += [(latest, reporters[0], False), (latest, reporters[2], False)]
        answers += [(latest, reporters[3], True)]
        for closing, reporter_id, still_fixed in answers:
            session.add(
                Recheck(
                    case_id=case.id,
                    reporter_id=reporter_id,
                    closed_event_id=closing,
                    still_fixed=still_fixed,
                )
            )
        session.flush()
        counts = recheck_counts(session, case.id)
    assert (counts.still_fixed, counts.not_fixed) == (1, 2)
    assert (counts.total_still_fixed, counts.total_not_fixed) == (2, 3)
