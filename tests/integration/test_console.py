"""The office console through the test client: `cityrelay create-user`, logging in and the
first-login password change, CSRF on every POST, who sees which case, the escaping of what
reporters wrote, the action forms the state machine allows, and a refused action's 409 page."""

from __future__ import annotations

import base64
import io
import json
import re
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.test import TestResponse

from cityrelay.cli import main
from cityrelay.settings import instance_secret_key
from console import throttle
from console import views as console_views
from console.map import draw
from models.entities import Case, CaseEvent, ResponseTemplate, User
from models.session import unit_of_work
from services import casework, users
from services.errors import InvalidField, NotFound, ServiceError
from services.photos import check_photos
from tests.factories import make_case
from tests.helpers import sample_point, tiny_png

POINT = sample_point()
OFFICE = POINT["office"]  # a community of street PD-CJ
STREET = "PD-CJ"
NEIGHBOUR = "PD-CJ-02"
PASSWORD = "a-good-long-password"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
SCRIPT = "<script>alert(1)</script>"


def make_user(
    sessions: sessionmaker[Session], role: str, office: str, *, first_login: bool = False
) -> tuple[str, str]:
    """A console user: its username and password (the one-time one when ``first_login``)."""
    # Unique in the run: failed logins are counted in Redis by username, past any rollback.
    username = f"{role}-{office.lower()}-{uuid.uuid4().hex[:8]}"
    with unit_of_work(sessions) as session:
        user, one_time = users.create_user(
            session, username=username, office_code=office, role=role
        )
        if first_login:
            return user.username, one_time
        users.change_password(session, user.id, one_time, PASSWORD)
    return user.username, PASSWORD


def csrf_of(page: TestResponse) -> str:
    match = CSRF.search(page.get_data(as_text=True))
    assert match, "every console form carries the CSRF token"
    return match.group(1)


def log_in(client: FlaskClient, username: str, password: str) -> TestResponse:
    token = csrf_of(client.get("/console/login"))
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": token},
    )


@pytest.fixture
def staff(app: Flask, sessions: sessionmaker[Session]) -> FlaskClient:
    client = app.test_client()
    assert log_in(client, *make_user(sessions, "staff", OFFICE)).status_code == 303
    return client


def post_action(client: FlaskClient, case_id: int, action: str, **data: object) -> TestResponse:
    token = csrf_of(client.get(f"/console/cases/{case_id}"))
    return client.post(f"/console/cases/{case_id}/{action}", data={"csrf_token": token, **data})


# ---------------------------------------------------------------- users and the CLI


@pytest.mark.committed
def test_create_user_prints_a_one_time_password_stored_as_argon2(
    database_url: str, sessions: sessionmaker[Session]
) -> None:
    runner = CliRunner()
    env = {"DATABASE_URL": database_url}
    args = ["create-user", "--office", OFFICE, "--role", "staff", "--username", "Wang.Li"]
    result = runner.invoke(main, args, env=env)
    assert result.exit_code == 0, result.output
    password = re.search(r"one-time password: (\S+)", result.output)
    assert password and len(password.group(1)) >= 16
    assert "changed at the first login" in result.output
    with unit_of_work(sessions) as session:
        row = session.scalar(select(User).where(User.username == "wang.li"))
        assert row is not None and row.role == "staff" and row.must_change_password
        assert row.password_hash.startswith("$argon2id$")
        assert password.group(1) not in row.password_hash
        assert users.authenticate(session, "wang.li", password.group(1)) is not None

    again = runner.invoke(main, args, env=env)
    assert again.exit_code != 0 and "already exists" in again.output
    unknown = runner.invoke(
        main,
        ["create-user", "--office", "NO-SUCH", "--role", "staff", "--username", "x9"],
        env=env,
    )
    assert unknown.exit_code != 0 and "NO-SUCH" in unknown.output
    bad_role = runner.invoke(
        main, ["create-user", "--office", OFFICE, "--role", "boss", "--username", "x8"], env=env
    )
    assert bad_role.exit_code != 0
    helped = " ".join(runner.invoke(main, ["create-user", "--help"]).output.split())
    assert "one-time password" in helped and "argon2" in helped


def test_user_rules(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        with pytest.raises(InvalidField) as bad_name:
            users.create_user(session, username="a b", office_code=OFFICE, role="staff")
        assert bad_name.value.field == "username"
        with pytest.raises(InvalidField):
            users.create_user(session, username="ok1", office_code=OFFICE, role="boss")
        with pytest.raises(NotFound):
            users.create_user(session, username="ok2", office_code="NO-SUCH", role="staff")
        user, one_time = users.create_user(
            session, username="chen", office_code=OFFICE, role="staff"
        )
        assert users.authenticate(session, "chen", "wrong-password") is None
        assert users.authenticate(session, "nobody", one_time) is None
        with pytest.raises(InvalidField) as short:
            users.change_password(session, user.id, one_time, "short")
        assert short.value.code == "too_short"
        with pytest.raises(InvalidField) as same:
            users.change_password(session, user.id, one_time, one_time)
        assert same.value.code == "unchanged"
        with pytest.raises(InvalidField) as wrong:
            users.change_password(session, user.id, "not-it-at-all", PASSWORD)
        assert wrong.value.code == "wrong_password"
        users.change_password(session, user.id, one_time, PASSWORD)
        signed_in = users.authenticate(session, "CHEN", PASSWORD)
        assert signed_in is not None and not signed_in.must_change_password
        row = session.get(User, user.id)
        assert row is not None and row.last_login_at is not None
        row.disabled_at = row.last_login_at
        session.flush()
        assert users.authenticate(session, "chen", PASSWORD) is None


def test_a_console_user_acts_under_its_own_name(sessions: sessionmaker[Session]) -> None:
    case = make_case(sessions)
    username, _password = make_user(sessions, "staff", OFFICE)
    with unit_of_work(sessions) as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        caller = users.signed_in_user(session, user.id, users.session_epoch_of(user.password_hash))
        assert caller is not None
        state = casework.accept(session, case.id, caller.caller)
        assert state.status == "accepted"
        row = session.get(Case, case.id)
        assert row is not None and row.assignee == f"user:{user.id}"
        event = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.action == "accept")
        ).one()
        assert event.actor == f"user:{username}"
        assert event.detail == {"user_id": user.id}


# ---------------------------------------------------------------- logging in


def test_login_wrong_password_and_unknown_user_say_the_same(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    username, _password = make_user(sessions, "staff", OFFICE)
    client = app.test_client()
    wrong = log_in(client, username, "not-the-password")
    unknown = log_in(client, "nobody-at-all", "not-the-password")
    assert wrong.status_code == unknown.status_code == 401
    assert "用户名或密码不正确" in wrong.get_data(as_text=True)
    assert "用户名或密码不正确" in unknown.get_data(as_text=True)
    assert client.get("/console").status_code == 302


def test_first_login_must_change_the_password(app: Flask, sessions: sessionmaker[Session]) -> None:
    username, one_time = make_user(sessions, "staff", OFFICE, first_login=True)
    client = app.test_client()
    answer = log_in(client, username, one_time)
    assert answer.status_code == 303 and answer.headers["Location"].endswith("/console/password")
    # Nothing else opens until the password is changed.
    assert client.get("/console").headers["Location"].endswith("/console/password")
    page = client.get("/console/password")
    token = csrf_of(page)
    mismatch = client.post(
        "/console/password",
        data={
            "csrf_token": token,
            "old_password": one_time,
            "new_password": PASSWORD,
            "confirm_password": PASSWORD + "x",
        },
    )
    assert mismatch.status_code == 422 and "不一致" in mismatch.get_data(as_text=True)
    changed = client.post(
        "/console/password",
        data={
            "csrf_token": token,
            "old_password": one_time,
            "new_password": PASSWORD,
            "confirm_password": PASSWORD,
        },
    )
    assert changed.status_code == 303
    assert client.get("/console").status_code == 200
    assert log_in(app.test_client(), username, one_time).status_code == 401


def test_session_cookie_is_http_only_and_lax(app: Flask) -> None:
    page = app.test_client().get("/console/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    secure = app.test_client().get("/console/login", base_url="https://localhost")
    assert "Secure" in secure.headers["Set-Cookie"]
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(
    app: Flask, sessions: sessionmaker[Session], staff: FlaskClient
) -> None:
    case = make_case(sessions)
    missing = staff.post(f"/console/cases/{case.id}/accept", data={})
    wrong = staff.post(f"/console/cases/{case.id}/accept", data={"csrf_token": "forged"})
    for answer in (missing, wrong):
        assert answer.status_code == 400
        assert "安全令牌" in answer.get_data(as_text=True)
    with unit_of_work(sessions) as session:
        assert session.get(Case, case.id).status == "routed"  # type: ignore[union-attr]
    # A login form posted from elsewhere (no token in a fresh session) is refused too.
    username, password = make_user(sessions, "staff", OFFICE)
    fresh = app.test_client()
    forged = fresh.post("/console/login", data={"username": username, "password": password})
    assert forged.status_code == 400
    assert fresh.get("/console").status_code == 302


def test_a_password_change_ends_the_users_other_sessions(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    username, password = make_user(sessions, "staff", OFFICE)
    here, elsewhere = app.test_client(), app.test_client()
    assert log_in(here, username, password).status_code == 303
    assert log_in(elsewhere, username, password).status_code == 303
    new_password = "another-long-password"
    changed = here.post(
        "/console/password",
        data={
            "csrf_token": csrf_of(here.get("/console/password")),
            "old_password": password,
            "new_password": new_password,
            "confirm_password": new_password,
        },
    )
    assert changed.status_code == 303
    assert here.get("/console").status_code == 200  # the session that changed it goes on
    assert elsewhere.get("/console").headers["Location"].startswith("/console/login")
    assert log_in(elsewhere, username, new_password).status_code == 303
    with unit_of_work(sessions) as session:
        user = session.scalar(select(User).where(User.username == username))
        assert user is not None
        assert users.signed_in_user(session, user.id, "0" * 16) is None
        current = users.session_epoch_of(user.password_hash)
        assert users.signed_in_user(session, user.id, current) is not None


def test_logout_needs_a_post_and_ends_the_session(staff: FlaskClient) -> None:
    token = csrf_of(staff.get("/console"))
    assert staff.get("/console/logout").status_code == 405
    assert staff.post("/console/logout", data={"csrf_token": token}).status_code == 303
    assert staff.get("/console").status_code == 302


# ---------------------------------------------------------------- who sees what


def test_staff_see_their_queue_and_not_another_offices_case(
    app: Flask, sessions: sessionmaker[Session], staff: FlaskClient
) -> None:
    case = make_case(sessions)
    queue = staff.get("/console").get_data(as_text=True)
    assert f'data-case-id="{case.id}"' in queue
    assert staff.get(f"/console/cases/{case.id}").status_code == 200

    neighbour = app.test_client()
    log_in(neighbour, *make_user(sessions, "staff", NEIGHBOUR))
    # another office's case looks like no case
    assert neighbour.get(f"/console/cases/{case.id}").status_code == 404
    assert f'data-case-id="{case.id}"' not in neighbour.get("/console").get_data(as_text=True)
    # Asking for another office's queue by name shows one's own.
    other = neighbour.get(f"/console?office={OFFICE}").get_data(as_text=True)
    assert f'data-case-id="{case.id}"' not in other
    assert neighbour.get("/console/cases/999999999").status_code == 404


def test_a_supervisor_sees_the_offices_under_theirs(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions)
    street = app.test_client()
    log_in(street, *make_user(sessions, "supervisor", STREET))
    switch = street.get("/console").get_data(as_text=True)
    assert f'<option value="{OFFICE}"' in switch and f'<option value="{NEIGHBOUR}"' in switch
    queue = street.get(f"/console?office={OFFICE}").get_data(as_text=True)
    assert f'data-case-id="{case.id}"' in queue
    assert street.get(f"/console/cases/{case.id}").status_code == 200

    other_street = app.test_client()
    log_in(other_street, *make_user(sessions, "supervisor", "PD-HG"))
    assert other_street.get(f"/console/cases/{case.id}").status_code == 404


def test_what_reporters_wrote_is_escaped(
    staff: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions, text=f"垃圾桶满了 {SCRIPT}", address=f"路口 {SCRIPT}")
    page = staff.get(f"/console/cases/{case.id}").get_data(as_text=True)
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    queue = staff.get("/console").get_data(as_text=True)
    assert SCRIPT not in queue


def test_the_case_page_shows_reports_map_timeline_and_rechecks(
    staff: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions, contact={"phone": "13800138000"})
    page = staff.get(f"/console/cases/{case.id}")
    text = page.get_data(as_text=True)
    assert page.status_code == 200
    assert "垃圾桶满了溢出来了" in text and "外卖骑手" in text
    assert "13800138000" not in text  # reporters' contacts never reach the console
    assert 'id="case-point"' in text and "<polygon" in text
    assert "仍然修好：0" in text
    assert "收到上报" in text  # the timeline's first event
    english = staff.get(f"/console/cases/{case.id}?lang=en").get_data(as_text=True)
    assert "Reports (1)" in english and "delivery rider" in english
    # The choice is kept for the next page.
    assert "Cases of" in staff.get("/console").get_data(as_text=True)


# ---------------------------------------------------------------- actions


def action_buttons(page: TestResponse) -> set[str]:
    return set(re.findall(r'id="do-([a-z-]+)"', page.get_data(as_text=True)))


def test_only_allowed_actions_are_offered(
    app: Flask, staff: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions)
    assert action_buttons(staff.get(f"/console/cases/{case.id}")) == {"accept", "transfer"}
    accepted = post_action(staff, case.id, "accept", note="")
    assert accepted.status_code == 303
    page = staff.get(f"/console/cases/{case.id}")
    assert "已完成：受理" in page.get_data(as_text=True)
    assert action_buttons(page) == {"start", "ask", "resolve", "transfer", "extend"}

    resolved = post_action(
        staff,
        case.id,
        "resolve",
        note="已清运",
        photos=(io.BytesIO(tiny_png(7)), "after.png"),
    )
    assert resolved.status_code == 303
    page = staff.get(f"/console/cases/{case.id}")
    assert action_buttons(page) == set()
    assert 'id="photos-after"' in page.get_data(as_text=True)
    # stored with the resolution, in the photo store every web machine serves from
    after = check_photos([tiny_png(7)], 1, 10**7)[0]
    served = staff.get(f"/media/{after.filename}")
    assert served.status_code == 200 and served.data == after.data

    supervisor = app.test_client()
    log_in(supervisor, *make_user(sessions, "supervisor", STREET))
    assert action_buttons(supervisor.get(f"/console/cases/{case.id}")) == {"close", "rework"}
    closed = post_action(supervisor, case.id, "close", closure="fixed", note="核查通过")
    assert closed.status_code == 303
    with unit_of_work(sessions) as session:
        row = session.get(Case, case.id)
        assert row is not None and (row.status, row.closure) == ("closed", "fixed")


def test_a_refused_action_shows_the_status_now_with_409(
    staff: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions)
    token = csrf_of(staff.get(f"/console/cases/{case.id}"))
    assert post_action(staff, case.id, "accept").status_code == 303
    # The same form sent again, from a page that still offered "accept".
    again = staff.post(f"/console/cases/{case.id}/accept", data={"csrf_token": token})
    assert again.status_code == 409
    text = again.get_data(as_text=True)
    assert "案件现在的状态是“已受理”" in text and 'id="do-resolve"' in text
    # Staff may never close: the state machine's refusal is a 403.
    refused = post_action(staff, case.id, "close", closure="invalid")
    assert refused.status_code == 403
    assert "您的角色不能“结案”" in refused.get_data(as_text=True)
    assert "现在可以：开始处置、向上报人提问" in refused.get_data(as_text=True)


def test_a_resolution_refused_stores_no_after_photo(
    staff: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions)  # routed: not resolvable before it is accepted
    after = check_photos([tiny_png(26)], 1, 10**7)[0]
    photo = (io.BytesIO(tiny_png(26)), "after.png")
    refused = post_action(staff, case.id, "resolve", note="已清运", photos=photo)
    assert refused.status_code == 409
    assert staff.get(f"/media/{after.filename}").status_code == 404


def test_bad_forms_name_what_is_missing(
    staff: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions)
    post_action(staff, case.id, "accept")
    no_note = post_action(staff, case.id, "resolve", note="  ")
    assert no_note.status_code == 422 and "请填写" in no_note.get_data(as_text=True)
    not_a_photo = post_action(
        staff, case.id, "resolve", note="好了", photos=(io.BytesIO(b"not an image"), "x.png")
    )
    assert not_a_photo.status_code == 422 and "照片无效" in not_a_photo.get_data(as_text=True)
    hours = post_action(staff, case.id, "extend", hours="0", reason="需要协调")
    assert hours.status_code == 422
    for hours_sent in ("²", "１２", "9" * 5000, "-3", "2.5"):
        refused = post_action(staff, case.id, "extend", hours=hours_sent, reason="需要协调")
        assert refused.status_code == 422, hours_sent
        assert "延期小时数必须是 1 到 720 之间的整数" in refused.get_data(as_text=True)
    nowhere = post_action(staff, case.id, "transfer", office="NO-SUCH", reason="不是我们的")
    assert nowhere.status_code == 422 and "NO-SUCH" in nowhere.get_data(as_text=True)
    assert post_action(staff, case.id, "split").status_code == 404
    with unit_of_work(sessions) as session:
        assert session.get(Case, case.id).status == "accepted"  # type: ignore[union-attr]


def test_a_services_other_refusal_shows_its_own_words(
    staff: FlaskClient, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    # casework's own refusals here are conflicts; these stand for any it may add later.
    case = make_case(sessions)

    def refuse_with(error: ServiceError) -> None:
        def refuse(*_args: object, **_kwargs: object) -> None:
            raise error

        monkeypatch.setattr(casework, "accept", refuse)

    refuse_with(InvalidField("note", "Notes may not say that."))
    named = post_action(staff, case.id, "accept", note="x")
    text = named.get_data(as_text=True)
    assert named.status_code == 422
    assert "公开说明（上报人可见）：Notes may not say that." in text and "照片无效" not in text
    refuse_with(ServiceError("The office is closed today."))
    plain = post_action(staff, case.id, "accept")
    assert plain.status_code == 422
    assert "未能完成：The office is closed today." in plain.get_data(as_text=True)
    refuse_with(ServiceError(""))
    wordless = post_action(staff, case.id, "accept")
    assert wordless.status_code == 422
    assert "未能完成这个操作" in wordless.get_data(as_text=True)
    with unit_of_work(sessions) as session:
        assert session.get(Case, case.id).status == "routed"  # type: ignore[union-attr]


def test_response_templates_are_seeded_and_offered(
    staff: FlaskClient, sessions: sessionmaker[Session]
) -> None:
    with unit_of_work(sessions) as session:
        own = session.scalars(
            select(ResponseTemplate).where(ResponseTemplate.category_code == "bin_overflow")
        ).all()
        assert own, "the seed has templates of its own for overflowing bins"
    case = make_case(sessions)
    post_action(staff, case.id, "accept")
    page = staff.get(f"/console/cases/{case.id}").get_data(as_text=True)
    assert 'id="template-resolve"' in page and own[0].text_zh in page
    english = staff.get(f"/console/cases/{case.id}?lang=en").get_data(as_text=True)
    assert own[0].text_en in english


def test_two_console_users_race_and_the_loser_sees_409(
    app: Flask, sessions: sessionmaker[Session], staff: FlaskClient
) -> None:
    case = make_case(sessions)
    token = csrf_of(staff.get(f"/console/cases/{case.id}"))
    with unit_of_work(sessions) as session:
        other = users.create_user(session, username="rival", office_code=OFFICE, role="staff")[0]
        casework.accept(session, case.id, other.caller)
    answer = staff.post(f"/console/cases/{case.id}/accept", data={"csrf_token": token})
    assert answer.status_code == 409
    assert "案件现在的状态是“已受理”" in answer.get_data(as_text=True)
    with unit_of_work(sessions) as session:
        accepts = session.scalars(
            select(CaseEvent).where(CaseEvent.case_id == case.id, CaseEvent.action == "accept")
        ).all()
        assert [event.actor for event in accepts] == ["user:rival"]


def test_the_map_keeps_the_point_inside_the_drawing() -> None:
    square = {"type": "Polygon", "coordinates": [[[121.0, 31.0], [121.1, 31.0], [121.1, 31.1]]]}
    drawing = draw(square, 31.05, 121.05)
    assert drawing is not None and len(drawing.dots) == 1
    x, y = drawing.dots[0].x, drawing.dots[0].y
    assert 0 < x < drawing.width and 0 < y < drawing.height
    assert draw(None, None, None) is None
    assert draw(None, 31.0, 121.0) is not None


def test_repeated_failures_lock_the_username_for_a_while(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    username, password = make_user(sessions, "staff", OFFICE)
    client = app.test_client()
    for _attempt in range(throttle.MAX_FAILURES):
        assert log_in(client, username, "not-the-password").status_code == 401
    locked = log_in(client, username, password)
    assert locked.status_code == 429
    assert "分钟后再试" in locked.get_data(as_text=True)
    assert client.get("/console").status_code == 302
    # Another username is not held back by this one's failures.
    other, other_password = make_user(sessions, "staff", NEIGHBOUR)
    assert log_in(app.test_client(), other, other_password).status_code == 303
    # Nor is the same user logging in from another address.
    elsewhere = app.test_client()
    elsewhere.environ_base["REMOTE_ADDR"] = "10.20.30.40"
    assert log_in(elsewhere, username, password).status_code == 303


def test_failures_from_many_addresses_meet_a_ceiling_per_username(
    app: Flask, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(throttle, "MAX_FAILURES_PER_USERNAME", 3)
    username, password = make_user(sessions, "staff", OFFICE)
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        client = app.test_client()
        client.environ_base["REMOTE_ADDR"] = address
        assert log_in(client, username, "not-the-password").status_code == 401
    fourth = app.test_client()
    fourth.environ_base["REMOTE_ADDR"] = "10.0.0.4"
    assert log_in(fourth, username, password).status_code == 429


def test_logins_go_on_while_redis_is_down(
    app: Flask, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    username, password = make_user(sessions, "staff", OFFICE)
    # Nothing listens on port 1: every Redis call fails with a connection error.
    monkeypatch.setitem(app.config, "REDIS_URL", "redis://127.0.0.1:1/13")
    monkeypatch.delitem(app.extensions, throttle._CLIENT, raising=False)
    client = app.test_client()
    assert log_in(client, username, "not-the-password").status_code == 401
    assert log_in(client, username, password).status_code == 303
    assert client.get("/console").status_code == 200


def test_the_triage_desk_sees_cases_without_an_office(
    app: Flask, sessions: sessionmaker[Session]
) -> None:
    case = make_case(sessions, threshold=1.01)
    assert case.status == "triage"
    desk = app.test_client()
    log_in(desk, *make_user(sessions, "admin", "PD"))
    queue = desk.get("/console").get_data(as_text=True)
    assert "待分拨的案件" in queue and f'data-case-id="{case.id}"' in queue
    page = desk.get(f"/console/cases/{case.id}")
    assert action_buttons(page) == {"transfer", "close"}
    moved = post_action(desk, case.id, "transfer", office=OFFICE, reason="属于春江一村")
    assert moved.status_code == 303
    with unit_of_work(sessions) as session:
        row = session.get(Case, case.id)
        assert row is not None and row.status == "routed" and row.office is not None
        assert row.office.code == OFFICE


def test_queue_filters_pages_and_overdue_badges(
    staff: FlaskClient, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = make_case(sessions), make_case(sessions)
    with unit_of_work(sessions) as session:
        late = session.get(Case, first.id)
        assert late is not None and late.due_at is not None
        late.due_at = late.due_at - timedelta(days=30)
    post_action(staff, second.id, "accept")

    def shown(page: TestResponse) -> list[int]:
        return [int(i) for i in re.findall(r'data-case-id="(\d+)"', page.get_data(as_text=True))]

    queue = staff.get("/console")
    assert shown(queue)[:2] == [first.id, second.id]  # the soonest due first
    row = re.search(rf'<tr class="overdue" data-case-id="{first.id}"', queue.get_data(as_text=True))
    assert row, "an overdue case is flagged"
    assert shown(staff.get("/console?overdue=1")) == [first.id]
    assert first.id not in shown(staff.get("/console?overdue=0"))
    assert shown(staff.get("/console?mine=1")) == [second.id]
    assert shown(staff.get("/console?status=accepted")) == [second.id]
    assert shown(staff.get("/console?category=street_light")) == []

    monkeypatch.setattr(console_views, "PAGE_SIZE", 1)
    page_one = staff.get("/console")
    assert shown(page_one) == [first.id]
    next_url = re.search(r'href="([^"]+)" id="next-page"', page_one.get_data(as_text=True))
    assert next_url
    assert shown(staff.get(next_url.group(1).replace("&amp;", "&"))) == [second.id]
    # A cursor that is not one is the first page, not an error.
    for cursor in bad_cursors():
        answer = staff.get(f"/console?cursor={cursor}")
        assert answer.status_code == 200, cursor
        assert shown(answer) == [first.id]


def b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def bad_cursors() -> list[str]:
    return [
        "rubbish",
        "%C2%B2",
        "A" * 5000,
        b64("2026-01-01T00:00:00|5"),
        b64("2026-01-01T00:00:00+00:00|99999999999999999999"),
        b64(json.dumps({"d": "2026-01-01T00:00:00", "i": 5})),
        b64(json.dumps({"d": None, "i": 2**40})),
        b64(json.dumps({"d": "9999-12-31T23:59:59-23:00", "i": 5})),
        b64("id|99999999999"),
        b64("id|²"),
        b64("id|-1"),
    ]


def test_the_triage_desk_pages_and_refuses_bad_cursors(
    app: Flask, sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    cases = [make_case(sessions, threshold=1.01) for _ in range(2)]
    desk = app.test_client()
    log_in(desk, *make_user(sessions, "admin", "PD"))
    monkeypatch.setattr(console_views, "PAGE_SIZE", 1)

    def shown(page: TestResponse) -> list[int]:
        return [int(i) for i in re.findall(r'data-case-id="(\d+)"', page.get_data(as_text=True))]

    first_page = shown(desk.get("/console"))
    assert len(first_page) == 1
    following = desk.get(f"/console?cursor={b64(f'id|{first_page[0]}')}")
    assert shown(following) and shown(following)[0] > first_page[0]
    assert {c.id for c in cases} & set(first_page + shown(following))
    for cursor in bad_cursors():
        answer = desk.get(f"/console?cursor={cursor}")
        assert answer.status_code == 200, cursor
        assert shown(answer) == first_page


def test_the_secret_key_is_made_once_and_kept_private(tmp_path: Path) -> None:
    key = instance_secret_key(tmp_path / "instance")
    path = tmp_path / "instance" / "secret_key"
    assert len(key) >= 40 and path.stat().st_mode & 0o777 == 0o600
    assert instance_secret_key(tmp_path / "instance") == key
    assert instance_secret_key(tmp_path / "other") != key
