"""Supervisor keys: `cityrelay create-key --role supervisor:<code>` and the one place keys are
issued (services.accounts.issue_key)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.orm import Session, sessionmaker

from cityrelay.cli import main
from models.entities import CASE_CLOSURES, CASE_STATUSES, KEY_ROLES
from models.session import unit_of_work
from routing import workflow
from services.accounts import find_key, issue_key
from services.errors import InvalidField, NotFound


def test_the_tables_know_the_state_machines_names() -> None:
    assert CASE_STATUSES == workflow.STATUSES
    assert CASE_CLOSURES == workflow.CLOSURES
    assert "supervisor" in KEY_ROLES


def test_issue_a_supervisor_key(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        row, key = issue_key(session, "supervisor", office_code="PD-HG")
        caller = find_key(session, key)
    assert caller is not None
    assert (caller.role, caller.office_code, caller.office_id) == (
        "supervisor",
        "PD-HG",
        row.office_id,
    )


@pytest.mark.parametrize(
    ("role", "office_code", "refusal"),
    [
        ("supervisor", "NO-SUCH", NotFound),
        ("supervisor", None, NotFound),
        ("boss", "PD-HG", InvalidField),
    ],
)
def test_refused_keys(
    sessions: sessionmaker[Session], role: str, office_code: str | None, refusal: type
) -> None:
    with unit_of_work(sessions) as session, pytest.raises(refusal):
        issue_key(session, role, office_code=office_code)


@pytest.mark.committed
def test_create_key_for_a_supervisor(database_url: str, sessions: sessionmaker[Session]) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    result = runner.invoke(
        main, ["create-key", "--role", "supervisor:PD-HG", "--name", "李科长"], env=env
    )
    assert result.exit_code == 0, result.output
    key = result.output.strip()
    with unit_of_work(sessions) as session:
        caller = find_key(session, key)
    assert caller is not None and (caller.role, caller.office_code) == ("supervisor", "PD-HG")

    staff = runner.invoke(main, ["create-key", "--role", "office:PD-HG-02"], env=env)
    assert staff.exit_code == 0, staff.output
    with unit_of_work(sessions) as session:
        staff_caller = find_key(session, staff.output.strip())
    assert staff_caller is not None and staff_caller.role == "office"

    unknown = runner.invoke(main, ["create-key", "--role", "supervisor:NO-SUCH"], env=env)
    assert unknown.exit_code != 0 and "NO-SUCH" in unknown.output
    bad = runner.invoke(main, ["create-key", "--role", "chief:PD-HG"], env=env)
    assert bad.exit_code != 0 and "supervisor:<code>" in bad.output
    helped = runner.invoke(main, ["create-key", "--help"])
    assert "supervisor:<office code>" in helped.output
