"""The office console's pages under /console: log in, change the one-time password, the queue,
a case in full with its map, and the forms of the actions the user may take now.

Pages are rendered on the server (Jinja, autoescaped) in Chinese, or in English after
``?lang=en`` (kept in the session). Every POST carries the session's CSRF token. Actions go
through the same services.casework functions as /api/v1/cases, in one unit of work each; a
refusal is shown on the case page with the status the case has now (409)."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from flask import (
    Response,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.typing import ResponseReturnValue

from console import i18n, throttle
from console.map import draw
from models.base import utcnow
from models.entities import Case
from models.limits import MAX_EXTENSION_HOURS, MAX_NOTE_CHARS
from models.queries import CLOCK_STOPPED_STATUSES, QueueFilter, QueuePosition
from routing import workflow as wf
from services import case_view, casework, console, rechecks, response_templates, users
from services.access import may_see
from services.errors import Conflict, Forbidden, InvalidField, NotFound, ServiceError
from services.users import ConsoleUser
from web import rate_limits
from web.assets import AssetBlueprint
from web.compression import leave_uncompressed
from web.db import read_session, unit_of_work
from web.i18n import remembered_language
from web.page_headers import add_page_headers, content_security_policy
from web.points import points_policy
from web.queue_cursors import MAX_CURSOR_CHARS, decode_cursor, encode_cursor
from web.rate_limits import RateLimited
from web.sessions import SESSION_EPOCH, SESSION_USER_ID, start_login
from web.uploads import read_photos, store_read_photos
from web.urls import MAX_ROW_ID

bp = AssetBlueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)

PAGE_SIZE = 25
# The triage desk pages by case id alone: "id|<last id>", base64.
TRIAGE_CURSOR_PREFIX = "id|"
CSRF_FIELD = "csrf_token"
OPEN_STATUSES = tuple(s for s in wf.STATUSES if s != wf.CLOSED)
# Endpoints open without signing in.
PUBLIC_ENDPOINTS = {"console.login", "console.static"}
# Endpoints open while the one-time password still waits to be changed.
FIRST_LOGIN_ENDPOINTS = PUBLIC_ENDPOINTS | {"console.change_password", "console.logout"}
CONSOLE_ACTIONS = (
    wf.ACCEPT,
    wf.START,
    wf.ASK,
    wf.RESOLVE,
    wf.TRANSFER,
    wf.EXTEND,
    wf.APPROVE_EXTENSION,
    wf.DENY_EXTENSION,
    wf.CLOSE,
    wf.REWORK,
)
# The label a service's refusal naming a form field shows that field by.
FORM_FIELD_LABELS = {
    "note": "form.note",
    "question": "form.question",
    "reason": "form.reason",
    "hours": "form.hours",
    "office": "form.office",
    "closure": "form.closure",
    "photos": "form.photos",
}
# Everything the pages load comes from this server; the map is inline SVG.
CONTENT_SECURITY_POLICY = content_security_policy()


# ---------------------------------------------------------------- every request


def t(key: str, **params: Any) -> str:
    return i18n.translate(g.console_lang, key, **params)


def t_or(key: str, fallback: str) -> str:
    return t(key) if i18n.has(key) else fallback


@bp.before_request
def _before() -> ResponseReturnValue | None:
    if request.endpoint == "console.static":
        return None
    g.console_lang = remembered_language()
    if CSRF_FIELD not in session:
        session[CSRF_FIELD] = secrets.token_urlsafe(32)
    if request.method == "POST" and not _csrf_ok():
        return _message_page("csrf.title", "csrf.message", 400)
    user_id, epoch = session.get(SESSION_USER_ID), session.get(SESSION_EPOCH)
    signed_in = isinstance(user_id, int) and isinstance(epoch, str)
    g.console_user = users.signed_in_user(read_session(), user_id, epoch) if signed_in else None
    if g.console_user is None:
        session.pop(SESSION_USER_ID, None)
        session.pop(SESSION_EPOCH, None)
        if request.endpoint not in PUBLIC_ENDPOINTS:
            return redirect(url_for("console.login", next=_here()))
    elif g.console_user.must_change_password and request.endpoint not in FIRST_LOGIN_ENDPOINTS:
        return redirect(url_for("console.change_password"))
    return None


def _csrf_ok() -> bool:
    sent = request.form.get(CSRF_FIELD, "")
    expected = session.get(CSRF_FIELD, "")
    return bool(sent and expected) and hmac.compare_digest(sent, expected)


def _here() -> str:
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def _user() -> ConsoleUser:
    user: ConsoleUser = g.console_user
    return user


@bp.context_processor
def _page_context() -> dict[str, Any]:
    lang = g.get("console_lang", "zh")
    other = "en" if lang == "zh" else "zh"
    args = {**request.args.to_dict(), "lang": other}
    return {
        "t": t,
        "t_or": t_or,
        "lang": lang,
        "html_lang": i18n.HTML_LANG[lang],
        "other_html_lang": i18n.HTML_LANG[other],
        "switch_url": f"{request.path}?{urlencode(args)}",
        "csrf_token": session.get(CSRF_FIELD, ""),
        "user": g.get("console_user"),
        "asset": asset_url,
        "local_time": local_time,
        "flash": session.pop("flash", None),
        "name_of": name_of,
    }


def asset_url(filename: str) -> str:
    """A static file's URL with its content hash (see web.assets), so
    a tablet never runs an old script."""
    return bp.asset_url(filename)


def local_time(moment: datetime | None) -> str:
    if moment is None:
        return ""
    zone = ZoneInfo(current_app.config.get("TIMEZONE", "Asia/Shanghai"))
    return moment.astimezone(zone).strftime("%Y-%m-%d %H:%M")


def name_of(thing: Any) -> str:
    """A category's or an office's name in the page's language."""
    if thing is None:
        return ""
    if hasattr(thing, "name_zh"):
        return str(thing.name_en if g.console_lang == "en" and thing.name_en else thing.name_zh)
    return str(thing.name_en if g.console_lang == "en" and thing.name_en else thing.name)


def _message_page(title_key: str, message_key: str, status: int) -> ResponseReturnValue:
    return render_template("console/message.html", title_key=title_key, message_key=message_key), (
        status
    )


@bp.after_request
def _page_headers(response: Response) -> Response:
    if response.mimetype == "text/html":
        # Every page holds the session's CSRF token, most a signed-in user's cases, next to
        # text from the URL: sent as it is (see web.compression). Its scripts and styles are
        # compressed.
        leave_uncompressed()
    return add_page_headers(response, CONTENT_SECURITY_POLICY, "no-store")


# ---------------------------------------------------------------- signing in


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = _safe_next(request.values.get("next", ""))
    if request.method == "GET":
        if g.console_user is not None:
            return redirect(next_url)
        return render_template("console/login.html", next_url=next_url, failed=False)
    username = request.form.get("username", "")
    password = request.form.get("password", "")
    name = users.normalize_username(username)
    address = request.remote_addr or "unknown"
    try:
        rate_limits.check("logins")
        wait = throttle.locked_for(name, address)
    except RateLimited as limited:
        wait = limited.retry_after
    if wait:
        minutes = (wait + 59) // 60
        page = render_template(
            "console/login.html", next_url=next_url, locked_minutes=minutes, username=username
        )
        return page, 429, {"Retry-After": str(wait)}
    with unit_of_work() as write:
        user = users.authenticate(write, username, password) if username and password else None
    if user is None:
        if name:
            throttle.record_failure(name, address)
        page = render_template(
            "console/login.html", next_url=next_url, failed=True, username=username
        )
        return page, 401
    throttle.forget_failures(name, address)
    # A new session on login: whatever a visitor's cookie held before is not carried over.
    lang = session.get("lang")
    session.clear()
    start_login(user.id, user.session_epoch)
    session[CSRF_FIELD] = secrets.token_urlsafe(32)
    if lang:
        session["lang"] = lang
    if user.must_change_password:
        return redirect(url_for("console.change_password"), 303)
    return redirect(next_url, 303)


def _safe_next(raw: str) -> str:
    """Only a path inside the console; anything else (another host, //evil) goes to the queue."""
    if raw.startswith("/console") and not raw.startswith("//") and "\\" not in raw:
        return raw
    return url_for("console.queue")


@bp.post("/logout")
def logout() -> ResponseReturnValue:
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    return redirect(url_for("console.login"), 303)


PASSWORD_ERRORS = {
    "wrong_password": "password.wrong",
    "too_short": "password.too_short",
    "unchanged": "password.unchanged",
}


@bp.route("/password", methods=["GET", "POST"])
def change_password() -> ResponseReturnValue:
    user = _user()
    error = None
    if request.method == "POST":
        old = request.form.get("old_password", "")
        new = request.form.get("new_password", "")
        if new != request.form.get("confirm_password", ""):
            error = t("password.mismatch")
        else:
            try:
                with unit_of_work() as write:
                    epoch = users.change_password(write, user.id, old, new)
                # Every other session of this user ends; this one goes on.
                session[SESSION_EPOCH] = epoch
            except InvalidField as refusal:
                key = PASSWORD_ERRORS.get(refusal.code, "password.too_long")
                error = t(key, min=users.MIN_PASSWORD_CHARS)
        if error is None:
            session["flash"] = t("password.changed")
            return redirect(url_for("console.queue"), 303)
    page = render_template(
        "console/password.html",
        error=error,
        first_login=user.must_change_password,
        min_chars=users.MIN_PASSWORD_CHARS,
    )
    return page, 422 if error else 200


# ---------------------------------------------------------------- the queue


def _triage_cursor(after_id: int) -> str:
    return base64.urlsafe_b64encode(f"{TRIAGE_CURSOR_PREFIX}{after_id}".encode()).decode()


def _triage_after(cursor: str) -> int | None:
    """The case id a triage desk's "next page" link stands for; None for anything else."""
    if len(cursor) > MAX_CURSOR_CHARS:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, ValueError):
        return None
    digits = raw.removeprefix(TRIAGE_CURSOR_PREFIX)
    if not raw.startswith(TRIAGE_CURSOR_PREFIX) or not _ascii_digits(digits) or len(digits) > 10:
        return None
    after_id = int(digits)
    return after_id if after_id <= MAX_ROW_ID else None


def _queue_after(cursor: str) -> QueuePosition | None:
    """The position an office queue's "next page" link stands for; None (the first page) for
    anything else."""
    try:
        return decode_cursor(cursor)
    except ValueError:
        return None


def _ascii_digits(text: str) -> bool:
    # str.isdigit() is true for "²" and other digits int() refuses.
    return text.isascii() and text.isdigit()


@bp.get("")
@bp.get("/")
def queue() -> ResponseReturnValue:
    user = _user()
    session_db = read_session()
    now = utcnow()
    args = request.args
    cursor = args.get("cursor", "")
    paged = False
    filters = {
        "status": args.get("status", "open"),
        "category": args.get("category", ""),
        "overdue": args.get("overdue", ""),
        "mine": args.get("mine", "") == "1",
    }
    offices = console.offices_in_charge(session_db, user)
    office = next((o for o in offices if o.code == args.get("office")), None)
    if office is None and offices:
        office = offices[0]
    if user.role == "admin":
        after_id = _triage_after(cursor) if cursor else None
        paged = after_id is not None
        rows = list(console.triage_queue(session_db, PAGE_SIZE + 1, after_id))
        cases = rows[:PAGE_SIZE]
        next_cursor = _triage_cursor(cases[-1].id) if len(rows) > PAGE_SIZE else None
    elif office is not None:
        if filters["status"] == "all":
            statuses: tuple[str, ...] = wf.STATUSES
        elif filters["status"] in wf.STATUSES:
            statuses = (filters["status"],)
        else:
            filters["status"] = "open"
            statuses = OPEN_STATUSES
        where = QueueFilter(
            statuses=statuses,
            category=filters["category"] or None,
            overdue={"1": True, "0": False}.get(filters["overdue"]),
            assignee=user.caller.assignee if filters["mine"] else None,
        )
        after = _queue_after(cursor) if cursor else None
        paged = after is not None
        page = case_view.office_queue(session_db, office.code, where, now, PAGE_SIZE, after)
        cases = list(page.cases)
        next_cursor = encode_cursor(page.next_position) if page.next_position else None
    else:
        cases, next_cursor = [], None
    next_args = {**args.to_dict(), "cursor": next_cursor} if next_cursor else None
    categories = console.categories(session_db)
    return render_template(
        "console/queue.html",
        cases=cases,
        offices=offices,
        office=office,
        filters=filters,
        categories=categories,
        statuses=wf.STATUSES,
        next_url=f"{request.path}?{urlencode(next_args)}" if next_args else None,
        first_url=url_for("console.queue", **{k: v for k, v in args.items() if k != "cursor"})
        if paged
        else None,
        is_overdue=lambda case: case_view.is_overdue(case, now),
        my_assignee=user.caller.assignee,
    )


# ---------------------------------------------------------------- a case


def _visible_case(case_id: int) -> Case | ResponseReturnValue:
    user = _user()
    try:
        case = case_view.case_in_full(read_session(), case_id)
    except NotFound:
        return _message_page("error.not_found.title", "error.not_found.message", 404)
    if user.role == "admin" or may_see(user.caller, case.office):
        return case
    # Another office's case looks like no case at all (docs/privacy.md).
    return _message_page("error.not_found.title", "error.not_found.message", 404)


@bp.get("/cases/<id:case_id>")
def case_page(case_id: int) -> ResponseReturnValue:
    found = _visible_case(case_id)
    if not isinstance(found, Case):
        return found
    return _render_case(found)


def _render_case(
    case: Case, error: str | None = None, status: int = 200, form: dict[str, str] | None = None
) -> ResponseReturnValue:
    user = _user()
    session_db = read_session()
    now = utcnow()
    allowed = [
        action
        for action in case_view.allowed_actions(case, user.caller, now)
        if action in CONSOLE_ACTIONS
    ]
    after_photos = [
        photo
        for event in case.events
        if event.action == wf.RESOLVE
        for photo in (event.detail or {}).get("photos", [])
    ]
    drawing = draw(case.office.jurisdiction if case.office else None, case.lat, case.lon)
    page = render_template(
        "console/case.html",
        case=case,
        allowed=allowed,
        templates=response_templates.templates_for(session_db, case.category_code, allowed),
        transfer_offices=[o for o in console.active_offices(session_db) if o.id != case.office_id]
        if wf.TRANSFER in allowed
        else [],
        closures=wf.CLOSURES,
        after_photos=after_photos,
        drawing=drawing,
        rechecks=rechecks.recheck_counts(session_db, case.id),
        overdue=case_view.is_overdue(case, now),
        clock=case_view.clock_state(case.status),
        pending_hours=casework.pending_extension_hours(case),
        clock_stopped=case.status in CLOCK_STOPPED_STATUSES,
        max_hours=MAX_EXTENSION_HOURS,
        max_photos=current_app.config.get("MAX_PHOTOS", 5),
        error=error,
        form=form or {},
        my_assignee=user.caller.assignee,
        assignee_name=users.assignee_names(session_db, [case.assignee]).get(
            case.assignee or "", case.assignee
        ),
    )
    return page, status


class FormError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _text(name: str, label_key: str, *, required: bool) -> str:
    value = request.form.get(name, "").strip()
    if required and not value:
        raise FormError(t("form.required", field=t(label_key)))
    if len(value) > MAX_NOTE_CHARS:
        raise FormError(t("form.too_long", field=t(label_key), max=MAX_NOTE_CHARS))
    return value


def _hours() -> int:
    raw = request.form.get("hours", "").strip()
    too_long = len(raw) > 10  # int() of thousands of digits is refused or slow
    if not _ascii_digits(raw) or too_long or not 1 <= int(raw) <= MAX_EXTENSION_HOURS:
        raise FormError(t("form.bad_hours", max=MAX_EXTENSION_HOURS))
    return int(raw)


def _choice(name: str, label_key: str, choices: tuple[str, ...]) -> str:
    value = request.form.get(name, "")
    if value not in choices:
        raise FormError(t("form.bad_choice", field=t(label_key)))
    return value


def _action_call(action: str, case_id: int, user: ConsoleUser) -> Callable[[Any], object]:
    """The service call for ``action`` with the form's values, checked before any write."""
    caller = user.caller
    if action == wf.ACCEPT:
        note = _text("note", "form.note", required=False)
        return lambda db: casework.accept(db, case_id, caller, note)
    if action == wf.START:
        note = _text("note", "form.note", required=False)
        return lambda db: casework.start(db, case_id, caller, note)
    if action == wf.ASK:
        question = _text("question", "form.question", required=True)
        return lambda db: casework.ask(db, case_id, caller, question)
    if action == wf.RESOLVE:
        note = _text("note", "form.note", required=True)
        files = [f for f in request.files.getlist("photos") if f.filename]
        try:
            photos = read_photos(files)
        except InvalidField as refusal:
            raise FormError(t("form.photos_invalid", message=refusal.message)) from None

        def resolve(db: Any) -> object:
            # the photos commit with the resolution that names them, or not at all
            store_read_photos(db, photos)
            return casework.resolve(db, case_id, caller, note, photos)

        return resolve
    if action == wf.TRANSFER:
        office = request.form.get("office", "").strip()
        if not office:
            raise FormError(t("form.bad_choice", field=t("form.office")))
        reason = _text("reason", "form.reason", required=True)
        return lambda db: casework.transfer(db, case_id, caller, office, reason)
    if action == wf.EXTEND:
        hours = _hours()
        reason = _text("reason", "form.reason", required=True)
        return lambda db: casework.extend(db, case_id, caller, hours, reason)
    if action == wf.APPROVE_EXTENSION:
        note = _text("note", "form.note", required=False)
        return lambda db: casework.approve_extension(db, case_id, caller, note)
    if action == wf.DENY_EXTENSION:
        note = _text("note", "form.note", required=False)
        return lambda db: casework.deny_extension(db, case_id, caller, note)
    if action == wf.CLOSE:
        closure = _choice("closure", "form.closure", wf.CLOSURES)
        note = _text("note", "form.note", required=False)
        policy = points_policy()
        return lambda db: casework.close(db, case_id, caller, closure, note, points_policy=policy)
    note = _text("note", "form.note", required=True)
    return lambda db: casework.rework(db, case_id, caller, note)


@bp.post("/cases/<id:case_id>/<action>")
def act(case_id: int, action: str) -> ResponseReturnValue:
    if action not in CONSOLE_ACTIONS:
        return _message_page("error.not_found.title", "error.not_found.message", 404)
    found = _visible_case(case_id)
    if not isinstance(found, Case):
        return found
    user = _user()
    form = {name: value for name, value in request.form.items() if name != CSRF_FIELD}
    form["_action"] = action
    try:
        call = _action_call(action, case_id, user)
        with unit_of_work() as write:
            call(write)
    except FormError as refusal:
        return _render_case(_fresh_case(case_id), refusal.message, 422, form)
    except Conflict as refusal:
        return _render_case(_fresh_case(case_id), _conflict_message(refusal), 409, form)
    except Forbidden as refusal:
        if refusal.code == wf.ROLE_NOT_ALLOWED:
            # Someone else's case stays a plain refusal; one's own shows why, on its page.
            message = _conflict_message(refusal, "refused.role", action=t(f"action.{action}"))
            return _render_case(_fresh_case(case_id), message, 403, form)
        return _message_page("error.forbidden.title", "error.forbidden.message", 403)
    except NotFound as refusal:
        if action == wf.TRANSFER:
            message = t("form.office_invalid", message=refusal.message)
            return _render_case(_fresh_case(case_id), message, 422, form)
        return _message_page("error.not_found.title", "error.not_found.message", 404)
    except ServiceError as refusal:
        return _render_case(_fresh_case(case_id), _refusal_message(action, refusal), 422, form)
    session["flash"] = t("flash.done", action=t(f"action.{action}"))
    return redirect(url_for("console.case_page", case_id=case_id), 303)


def _refusal_message(action: str, refusal: ServiceError) -> str:
    """A service's refusal of a form in its own words, naming the field it names."""
    field = getattr(refusal, "field", None)
    if action == wf.TRANSFER and field in (None, "office"):
        return t("form.office_invalid", message=refusal.message)
    if field == "photos":
        return t("form.photos_invalid", message=refusal.message)
    if not refusal.message:
        return t("form.refused_generic")
    if field:
        known = field in FORM_FIELD_LABELS
        label = t(FORM_FIELD_LABELS[field], max=MAX_EXTENSION_HOURS) if known else str(field)
        return t("form.field_refused", field=label, message=refusal.message)
    return t("form.refused", message=refusal.message)


def _fresh_case(case_id: int) -> Case:
    """The case read again after the refused write (the refusal's message itself names the
    status the writer found)."""
    reader = read_session()
    reader.expire_all()
    return case_view.case_in_full(reader, case_id)


def _conflict_message(
    refusal: Conflict | Forbidden, key: str = "conflict.message", **params: str
) -> str:
    status = refusal.details.get("status", "")
    allowed = [a for a in refusal.details.get("allowed_actions", []) if a in CONSOLE_ACTIONS]
    names = "、" if g.console_lang == "zh" else ", "
    return t(
        key,
        status=t_or(f"status.{status}", status),
        allowed=names.join(t(f"action.{a}") for a in allowed) or t("conflict.nothing"),
        **params,
    )
