"""Open311 GeoReport v2 under /open311/v2/, in JSON and XML.

A service is a category of the taxonomy; a service request is a report, whose status comes
from its case. Filing goes through the same pipeline as /api/v1/reports.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import datetime, timedelta
from typing import IO, Any
from urllib.parse import unquote_to_bytes, urlparse
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

from flask import Blueprint, Response, current_app, request, url_for
from sqlalchemy import func, or_, select
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.formparser import FormDataParser, MultiPartParser
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from intake.report_timeline import public_coordinate
from intake.reports import idempotency_key_header
from models import queries
from models.base import utcnow
from models.entities import CASE_CLOSED, CASE_STATUSES, Case, CaseEvent, Category, Report
from models.limits import (
    MAX_CONTACT_VALUE_CHARS,
    MAX_MEDIA_URL_CHARS,
    MAX_MEDIA_URLS,
    MAX_PAGE_SIZE,
    MAX_TEXT_CHARS,
)
from routing.attributes import Attribute, Keyword, validate_answers
from services.category_settings import (
    attributes_for,
    categories_with_attributes,
    keywords_by_category,
)
from services.errors import InvalidField, InvalidFields, ServiceError
from services.filing import IdempotencyConflict, NewReport, file_report
from services.locations import (
    COORDINATES_APART,
    LOCATION_MISSING,
    NO_POSITION_FIX,
    check_location,
)
from services.photos import photo_location
from web.auth import caller_for_key
from web.db import read_session, unit_of_work
from web.errors import (
    DATABASE_RETRY_AFTER_SECONDS,
    DATABASE_UNAVAILABLE,
    ApiError,
    from_service_error,
)
from web.guards import UNFIT_CHARACTERS
from web.numbers import ASCII_DECIMAL
from web.rate_limits import RateLimited, rate_limited
from web.uploads import read_photos, store_read_photos
from web.urls import MAX_ROW_ID

bp = Blueprint("open311", __name__, url_prefix="/open311/v2")

FORMATS = {"json": "application/json", "xml": "text/xml"}
# What every answer says it is: clients that guess decode Chinese XML as Latin-1 otherwise.
CONTENT_TYPES = {fmt: f"{mimetype}; charset=utf-8" for fmt, mimetype in FORMATS.items()}
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-11-23T00:00:00+08:00"
DEFAULT_WINDOW = timedelta(days=90)
# extensions=true carries each case's history: fewer of them per page.
EXTENSIONS_MAX_PAGE_SIZE = 100
# attribute[…] values a client sends that the service does not ask about (FixMyStreet's
# report_url, fixmystreet_id) are kept with the report, within these bounds.
MAX_EXTRA_ATTRIBUTES = 20
MAX_EXTRA_ATTRIBUTE_NAME_CHARS = 64
MAX_EXTRA_ATTRIBUTE_VALUE_CHARS = 500
MAX_EXTRA_ATTRIBUTE_VALUES = 20

# Ids and pages in ASCII digits only (str.isdigit and int also take "²", "١", "５" and "3_1").
ASCII_DIGITS = re.compile(r"[0-9]+")

# Open311 knows two statuses; every case status maps onto one of them: closed is closed, any
# other (triage, routed, accepted, in_progress, waiting, resolved) is open, and so is a report
# not yet processed.
OPEN311_STATUS = {
    "received": "open",
    **{status: "closed" if status == CASE_CLOSED else "open" for status in CASE_STATUSES},
}

# Actions whose note staff write for the reporter: status_notes shows the latest of them.
PUBLIC_NOTE_ACTIONS = frozenset({"accept", "start", "ask", "resolve", "transfer", "close"})
# What the pipeline does by itself: status_notes keeps its own wording (received, routed to an
# office, waiting at the triage desk) for these.
PIPELINE_ACTIONS = frozenset({"received", "classified", "routed", "triaged", "reject", "split"})
# Notes that stay inside CityRelay (Open311 is public): extension reasons and decisions, rework
# orders to the office, reporters' own words, escalations. Their events are described in our words.
# The public report (intake.report_timeline) keeps these notes inside too: an office's reason for
# rejecting a case, and reporters' rechecks.
INTERNAL_NOTE_ACTIONS = frozenset(
    {
        "extend",
        "approve-extension",
        "deny-extension",
        "rework",
        "answer",
        "confirm",
        "reopen",
        "escalate",
        "rejected",
        "recheck",
    }
)

# Our words for every kind of event, in Chinese and English.
EVENT_WORDS: dict[str, tuple[str, str]] = {
    "received": ("已收到。", "Received."),
    "classified": ("已分类。", "Classified."),
    "routed": ("已派单。", "Routed to an office."),
    "triaged": ("等待人工分拨。", "Waiting for a person at the triage desk to place it."),
    "merged": ("与同一问题的其他报告合并。", "Joined other reports of the same problem."),
    "split": ("与原工单拆分。", "Split from a case about a different problem."),
    "reject": ("原单位退回，已重新派单。", "Sent back by the office and routed again."),
    "rejected": ("原单位退回，已重新派单。", "Sent back by the office and routed again."),
    "accept": ("已受理。", "Accepted by the office."),
    "start": ("正在处理。", "Work has started."),
    "ask": ("需要补充信息。", "The office asked for more information."),
    "answer": ("报告人已补充信息。", "The reporter answered."),
    "resolve": ("已处理完毕。", "Resolved by the office."),
    "transfer": ("已转派其他单位。", "Transferred to another office."),
    "extend": ("申请延期。", "The office asked for more time."),
    "approve-extension": ("延期已批准。", "More time was granted."),
    "deny-extension": ("延期未获批准。", "More time was not granted."),
    "rework": ("退回重新处理。", "Sent back to be handled again."),
    "confirm": ("报告人确认已修复。", "A reporter confirmed the fix."),
    "close": ("已办结。", "Closed."),
    "reopen": ("报告人重新打开。", "Reopened by a reporter."),
    "recheck": ("报告人复查了修复情况。", "A reporter checked whether the fix holds."),
    "escalate": ("已超期，已报上级督办。", "Past its due time; the office above was told."),
}


def _event_words(event: CaseEvent, english: bool) -> str:
    """The event's note when it may be shown, otherwise our words for the event."""
    if event.action not in INTERNAL_NOTE_ACTIONS and event.note.strip():
        return event.note
    return _our_words(event, english)


def _our_words(event: CaseEvent, english: bool) -> str:
    zh, en = EVENT_WORDS.get(event.action, (event.action, event.action.replace("-", " ")))
    return en if english else zh


def _latest_public_note(case: Case, english: bool) -> str | None:
    """The note of the latest event written for the reporter; when a later change of status
    came without one, our words for that change; None when the pipeline's step is the news."""
    for event in reversed(case.events):
        if event.action in PUBLIC_NOTE_ACTIONS and event.note.strip():
            return event.note
        if event.to_status != event.from_status:
            return None if event.action in PIPELINE_ACTIONS else _our_words(event, english)
    return None


# How JSON lists of objects become XML (JSON_and_XML_Conversion): plural wrapper, singular item.
XML_ITEM = {
    "services": "service",
    "service_requests": "request",
    "attributes": "attribute",
    "values": "value",
    "endpoints": "endpoint",
    "formats": "format",
    "notes": "note",
    "errors": "error",
    "media_urls": "media_url",
}


class Open311Error(Exception):
    def __init__(self, status: int, *descriptions: str) -> None:
        super().__init__("; ".join(descriptions))
        self.status = status
        self.descriptions = descriptions


# ---------------------------------------------------------------- rendering


def _clean(value: Any) -> Any:
    """``value`` without the characters XML cannot hold, in every text it contains."""
    if isinstance(value, str):
        # Reports stored before input was checked may hold what XML cannot: answers drop it.
        return UNFIT_CHARACTERS.sub("", value)
    if isinstance(value, dict):
        return {key: _clean(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_clean(inner) for inner in value]
    return value


def _xml_value(parent: ET.Element, tag: str, value: Any) -> None:
    element = ET.SubElement(parent, tag)
    if isinstance(value, dict):
        for key, inner in value.items():
            _xml_value(element, key, inner)
    elif isinstance(value, list):
        item_tag = XML_ITEM.get(tag, "item")
        for inner in value:
            _xml_value(element, item_tag, inner)
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(value)


def to_xml(root: str, value: Any) -> bytes:
    holder = ET.Element("holder")
    _xml_value(holder, root, value)
    body: bytes = ET.tostring(holder[0], encoding="utf-8", xml_declaration=True)
    return body


def render(fmt: str, root: str, value: Any, status: int = 200) -> Response:
    """The answer in ``fmt``; JSON and XML say the same, without characters XML cannot hold."""
    value = _clean(value)
    if fmt == "xml":
        return Response(to_xml(root, value), status, content_type=CONTENT_TYPES["xml"])
    body = json.dumps(value, ensure_ascii=False)
    return Response(body, status, content_type=CONTENT_TYPES["json"])


def render_errors(fmt: str, status: int, descriptions: tuple[str, ...]) -> Response:
    errors = [{"code": status, "description": d} for d in descriptions]
    return render(fmt if fmt in FORMATS else "json", "errors", errors, status)


def _format_of_request() -> str:
    match = re.search(r"\.(\w+)$", request.path)
    return match.group(1) if match and match.group(1) in FORMATS else "json"


@bp.errorhandler(Open311Error)
def _open311_error(error: Open311Error) -> Response:
    return render_errors(_format_of_request(), error.status, error.descriptions)


@bp.errorhandler(ServiceError)
def _service_error(error: ServiceError) -> Response:
    return _api_error(from_service_error(error))


@bp.errorhandler(ApiError)
def _api_error(error: ApiError) -> Response:
    status = error.status if error.status in {403, 404} else 400
    fields = error.fields or {}
    descriptions = tuple(f"{name}: {m}" for name, ms in fields.items() for m in ms)
    return render_errors(_format_of_request(), status, descriptions or (error.message,))


@bp.errorhandler(Exception)
def _unexpected(error: Exception) -> Response:
    """Whatever else goes wrong: 500 in Open311's shape and the requested format, logged."""
    if isinstance(error, HTTPException):
        return open311_http_error(error)
    if isinstance(error, DATABASE_UNAVAILABLE):
        current_app.logger.warning("database unavailable: %s", str(error).splitlines()[0])
        response = render_errors(
            _format_of_request(),
            503,
            ("The database is not answering; nothing was saved. Try again shortly.",),
        )
        response.headers["Retry-After"] = str(DATABASE_RETRY_AFTER_SECONDS)
        return response
    current_app.logger.error("unhandled error in Open311", exc_info=error)
    return render_errors(_format_of_request(), 500, ("Something went wrong on our side.",))


@bp.errorhandler(RateLimited)
def _rate_limited(error: RateLimited) -> Response:
    response = render_errors(_format_of_request(), 429, (error.message,))
    response.headers["Retry-After"] = str(error.retry_after)
    return response


def open311_http_error(error: HTTPException) -> Response:
    """Unknown paths and methods under /open311/, and a database outage (503), answer in
    Open311's error shape too."""
    status = error.code or 500
    # Statuses a client acts on keep their meaning (and headers: Allow, Retry-After); any other
    # refusal of the request is Open311's 400.
    status = status if status in {403, 404, 405, 408, 413, 429, 503} else 400
    return render_errors(_format_of_request(), status, (error.description or error.name,))


# ---------------------------------------------------------------- form bodies


def _text(data: bytes, name: str | None, charset: str = "utf-8") -> str:
    """``data`` decoded; a body that is not text in its charset is refused, naming the part."""
    try:
        return data.decode(charset)
    except UnicodeDecodeError:
        label = "UTF-8" if charset.lower() == "utf-8" else charset
        if name is None:
            raise Open311Error(
                400, f"The form body holds a parameter name that is not valid {label}."
            ) from None
        raise Open311Error(400, f"{name[:100]}: not valid {label} text.") from None


class Utf8MultiPartParser(MultiPartParser):
    """Werkzeug's multipart parsing, except that a field that is not text in its charset is
    refused instead of read with replacement characters (an api_key would then be unknown)."""

    def parse(
        self, stream: IO[bytes], boundary: bytes, content_length: int | None
    ) -> tuple[MultiDict[str, str], MultiDict[str, FileStorage]]:
        decoder = MultipartDecoder(
            boundary, max_form_memory_size=self.max_form_memory_size, max_parts=self.max_form_parts
        )
        fields: list[tuple[str, str]] = []
        files: list[tuple[str, FileStorage]] = []
        part: Field | File | None = None
        chunks: list[bytes] = []
        size = 0
        container: IO[bytes] | None = None
        while True:
            data = stream.read(self.buffer_size)
            decoder.receive_data(data or None)
            event = decoder.next_event()
            while not isinstance(event, (Epilogue, NeedData)):
                if isinstance(event, Field):
                    part, chunks, size = event, [], 0
                elif isinstance(event, File):
                    part, container = event, self.start_file_streaming(event, content_length)
                elif isinstance(event, Data) and isinstance(part, Field):
                    chunks.append(event.data)
                    size += len(event.data)
                    if self.max_form_memory_size is not None and size > self.max_form_memory_size:
                        raise RequestEntityTooLarge()
                    if not event.more_data:
                        charset = self.get_part_charset(part.headers)
                        fields.append((part.name, _text(b"".join(chunks), part.name, charset)))
                elif isinstance(event, Data) and isinstance(part, File) and container is not None:
                    container.write(event.data)
                    if not event.more_data:
                        container.seek(0)
                        storage = FileStorage(
                            container, part.filename, part.name, headers=part.headers
                        )
                        files.append((part.name, storage))
                event = decoder.next_event()
            if not data:
                return self.cls(fields), self.cls(files)


class Utf8FormDataParser(FormDataParser):
    """Form bodies whose every name and value must be UTF-8 (werkzeug's parser reads a body that
    is not as an empty form, or with replacement characters): 400 naming the parameter."""

    def _parse_urlencoded(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> tuple[IO[bytes], MultiDict[str, Any], MultiDict[str, Any]]:
        items = []
        for piece in stream.read().split(b"&"):
            if not piece:
                continue
            raw_name, _, raw_value = piece.partition(b"=")
            name = _text(unquote_to_bytes(raw_name.replace(b"+", b" ")), None)
            items.append((name, _text(unquote_to_bytes(raw_value.replace(b"+", b" ")), name)))
        return stream, self.cls(items), self.cls()

    def _parse_multipart(
        self,
        stream: IO[bytes],
        mimetype: str,
        content_length: int | None,
        options: dict[str, str],
    ) -> tuple[IO[bytes], MultiDict[str, Any], MultiDict[str, Any]]:
        parser = Utf8MultiPartParser(
            stream_factory=self.stream_factory,
            max_form_memory_size=self.max_form_memory_size,
            max_form_parts=self.max_form_parts,
            cls=self.cls,
        )
        boundary = options.get("boundary", "").encode("ascii")
        if not boundary:
            raise ValueError("Missing boundary")
        form, files = parser.parse(stream, boundary, content_length)
        return stream, form, files


@bp.url_value_preprocessor
def _utf8_forms(_endpoint: str | None, _values: dict[str, Any] | None) -> None:
    """Before anything reads the form (the app's checks of every request come after this)."""
    request.form_data_parser_class = Utf8FormDataParser


def _check_format(fmt: str) -> str:
    if fmt not in FORMATS:
        raise Open311Error(404, f"Unknown format '{fmt}'; use .json or .xml.")
    return fmt


def _param(name: str) -> str | None:
    value = request.args.get(name)
    if value is None and request.method == "POST":
        value = request.form.get(name)
    return value


def _api_key() -> str | None:
    return _param("api_key")


def _check_jurisdiction() -> None:
    given = _param("jurisdiction_id")
    if given and given != current_app.config["OPEN311_JURISDICTION"]:
        raise Open311Error(404, f"Unknown jurisdiction_id '{given}'.")


def _lang() -> str:
    chosen = _param("locale") or request.accept_languages.best_match(["zh", "en"], default="zh")
    return "en" if str(chosen).lower().startswith("en") else "zh"


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(current_app.config["TIMEZONE"])).isoformat(timespec="seconds")


# ---------------------------------------------------------------- discovery and services


@bp.get("/discovery.<fmt>")
def discovery(fmt: str) -> Response:
    _check_format(fmt)
    base = url_for("open311.services", fmt="json", _external=True).rsplit("/", 1)[0] + "/"
    endpoint = {
        "specification": SPECIFICATION,
        "url": base,
        "changeset": CHANGESET,
        "formats": list(FORMATS.values()),
    }
    document = {
        "changeset": CHANGESET,
        "contact": current_app.config["OPEN311_CONTACT"],
        "key_service": url_for("api.register_reporter", _external=True),
        # One server is both: the demo city makes it safe to test against production.
        "endpoints": [{**endpoint, "type": "production"}, {**endpoint, "type": "test"}],
    }
    return render(fmt, "discovery", document)


def _service(
    category: Category, lang: str, asks_questions: bool, keywords: tuple[Keyword, ...]
) -> dict[str, Any]:
    name = category.name_en if lang == "en" else category.name_zh
    other = category.name_zh if lang == "en" else category.name_en
    limit = f" Time limit: {category.time_limit}." if category.time_limit else ""
    return {
        "service_code": category.code,
        "service_name": name,
        "description": f"{other}.{limit}",
        "metadata": asks_questions,
        "type": "realtime",
        "keywords": ",".join(keyword.word for keyword in keywords),
        "group": category.group_zh,
    }


@bp.get("/services.<fmt>")
def services(fmt: str) -> Response:
    _check_format(fmt)
    _check_jurisdiction()
    lang = _lang()
    session = read_session()
    categories = session.scalars(select(Category).order_by(Category.position)).all()
    # Read on every request: what admins change shows on the next one.
    with_questions = categories_with_attributes(session)
    keywords = keywords_by_category(session)
    listed = [
        _service(c, lang, c.code in with_questions, keywords.get(c.code, ())) for c in categories
    ]
    return render(fmt, "services", listed)


def _datatype_description(attribute: Attribute) -> str | None:
    """What the admin wrote, else the number range when there is one."""
    if attribute.datatype_description:
        return attribute.datatype_description
    low, high = attribute.minimum, attribute.maximum
    if attribute.datatype != "number" or (low is None and high is None):
        return None
    if low is not None and high is not None:
        return f"a number from {low:g} to {high:g}"
    return f"a number of at least {low:g}" if low is not None else f"a number of at most {high:g}"


@bp.get("/services/<code>.<fmt>")
def service_definition(code: str, fmt: str) -> Response:
    _check_format(fmt)
    _check_jurisdiction()
    category = read_session().get(Category, code)
    if category is None:
        raise Open311Error(404, f"Unknown service_code '{code}'.")
    lang = _lang()
    attributes = [
        {
            "variable": True,
            "code": attribute.code,
            "datatype": attribute.datatype,
            "required": attribute.required,
            "datatype_description": _datatype_description(attribute),
            "order": order,
            "description": attribute.description(lang),
            "values": [
                {"key": choice.key, "name": choice.name(lang)} for choice in attribute.values
            ],
        }
        for order, attribute in enumerate(attributes_for(read_session(), code), start=1)
    ]
    return render(fmt, "service_definition", {"service_code": code, "attributes": attributes})


# ---------------------------------------------------------------- requests


def _last_change(case: Case) -> datetime:
    """The case's latest event, or its own updated_at when that is later."""
    moments = [case.updated_at, *(event.at for event in case.events)]
    return max(moment for moment in moments if moment is not None)


def _request_view(report: Report, lang: str, extensions: bool) -> dict[str, Any]:
    case = report.case
    category = case.category if case and case.category else None
    code = (case.category_code if case else None) or report.requested_category
    status = case.status if case else report.state
    english = lang == "en"
    latest_note = _latest_public_note(case, english) if case else None
    if case is None:
        notes = "Received; being classified and routed." if english else "已收到，正在分类派单。"
    elif latest_note is not None:
        notes = latest_note
    elif case.office is not None:
        notes = f"Routed to {case.office.name_en}." if english else f"已派给{case.office.name}。"
    else:
        notes = (
            "Waiting for a person at the triage desk to place it." if english else "等待人工分拨。"
        )
    if category is None and code:
        category = read_session().get(Category, code)
    photo_urls = [
        url_for("media.photo", name=photo.filename, _external=True) for photo in report.photos
    ]
    media = photo_urls + list(report.media_urls or [])
    view: dict[str, Any] = {
        "service_request_id": str(report.id),
        "status": OPEN311_STATUS.get(status, "open"),
        "status_notes": notes,
        "service_name": (category.name_en if lang == "en" else category.name_zh)
        if category
        else "",
        "service_code": code or "",
        "description": report.text,
        "agency_responsible": case.office.name if case and case.office else "",
        "service_notice": "",
        "requested_datetime": _iso(report.received_at),
        "updated_datetime": _iso(_last_change(case) if case else report.received_at),
        "expected_datetime": _iso(case.due_at) if case else None,
        "address": report.address,
        "address_id": report.address_id,
        "zipcode": "",
        "lat": public_coordinate(report.lat),
        "long": public_coordinate(report.lon),
    }
    if media:  # absent, not "", without one: the Open311 schema wants a URL
        view["media_url"] = media[0]
    if extensions:
        view["notes"] = [
            {
                "datetime": _iso(event.at),
                "description": _event_words(event, english),
                "type": event.action,
            }
            for event in (case.events if case else [])
        ]
        view["attributes"] = [{"code": k, "value": v} for k, v in (report.attributes or {}).items()]
        view["extended_attributes"] = {
            "case_id": str(case.id) if case else "",
            "case_status": status,
            "confidence": case.confidence if case else None,
            "office_code": case.office.code if case and case.office else "",
            "media_urls": media,
            "channel": report.channel,
        }
    return view


def _parse_when(name: str) -> datetime | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be an ISO 8601 date and time.") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
    return moment


def _whole_number(raw: str, highest: int) -> int | None:
    """``raw`` as a number from 1 to ``highest`` when it is one in ASCII digits, else None."""
    if not ASCII_DIGITS.fullmatch(raw) or len(raw.lstrip("0")) > len(str(highest)):
        return None
    number = int(raw)
    return number if 1 <= number <= highest else None


def _positive_int(name: str, default: int, highest: int, why: str = "") -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    number = _whole_number(raw, highest)
    if number is None:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {highest}{why}.")
    return number


def _request_ids(raw: str) -> list[int]:
    """The ids of a service_request_id list; an id no row can have (past the integer column)
    matches nothing."""
    wanted = []
    for part in (part.strip() for part in raw.split(",")):
        if not part:
            continue
        if not ASCII_DIGITS.fullmatch(part):
            raise Open311Error(
                400,
                f"service_request_id must be whole numbers separated by commas, not '{part[:20]}'.",
            )
        number = _whole_number(part, MAX_ROW_ID)
        if number is not None:
            wanted.append(number)
    return wanted


def _extensions() -> bool:
    return (request.args.get("extensions") or "").lower() in {"true", "1", "yes"}


@bp.get("/requests.<fmt>")
def list_requests(fmt: str) -> Response:
    _check_format(fmt)
    _check_jurisdiction()
    lang, extensions = _lang(), _extensions()
    page = _positive_int("page", 1, 1_000_000)
    if extensions:
        page_size = _positive_int(
            "page_size",
            EXTENSIONS_MAX_PAGE_SIZE,
            EXTENSIONS_MAX_PAGE_SIZE,
            " with extensions=true",
        )
    else:
        page_size = _positive_int("page_size", MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    query = queries.report_with_case().outerjoin(Case, Report.case_id == Case.id)
    ids = request.args.get("service_request_id")
    if ids:
        query = query.where(Report.id.in_(_request_ids(ids)))
    else:
        start, end = _parse_when("start_date"), _parse_when("end_date")
        if start is None and end is None:
            start = utcnow() - DEFAULT_WINDOW
        if start is not None and end is not None and start > end:
            raise Open311Error(400, "start_date is after end_date.")
        if start is not None:
            query = query.where(Report.received_at >= start)
        if end is not None:
            query = query.where(Report.received_at <= end)
        codes = [
            c.strip() for c in (request.args.get("service_code") or "").split(",") if c.strip()
        ]
        if codes:
            known = set(
                read_session().scalars(select(Category.code).where(Category.code.in_(codes)))
            )
            if unknown := [c for c in codes if c not in known]:
                raise Open311Error(404, f"Unknown service_code '{unknown[0]}'.")
            query = query.where(
                func.coalesce(Case.category_code, Report.requested_category).in_(codes)
            )
        statuses = [s.strip() for s in (request.args.get("status") or "").split(",") if s.strip()]
        if statuses:
            if bad := [s for s in statuses if s not in {"open", "closed"}]:
                raise Open311Error(400, f"status must be open or closed, not '{bad[0]}'.")
            case_statuses = [k for k, v in OPEN311_STATUS.items() if v in statuses]
            received = "received" in case_statuses
            query = query.where(
                or_(Case.status.in_(case_statuses), Report.case_id.is_(None) if received else False)
            )
    query = query.order_by(Report.received_at.desc(), Report.id.desc())
    query = query.limit(page_size).offset((page - 1) * page_size)
    reports = read_session().scalars(query).all()
    return render(fmt, "service_requests", [_request_view(r, lang, extensions) for r in reports])


@bp.get("/requests/<request_id>.<fmt>")
def get_request(request_id: str, fmt: str) -> Response:
    _check_format(fmt)
    _check_jurisdiction()
    report = None
    report_id = _whole_number(request_id, MAX_ROW_ID)
    if report_id is not None:
        report = read_session().scalar(queries.report_with_case().where(Report.id == report_id))
    if report is None:
        raise Open311Error(404, f"Unknown service_request_id '{request_id}'.")
    return render(fmt, "service_requests", [_request_view(report, _lang(), _extensions())])


@bp.get("/tokens/<token>.<fmt>")
def get_token(token: str, fmt: str) -> Response:
    _check_format(fmt)
    _check_jurisdiction()
    report_id = read_session().scalar(select(Report.id).where(Report.token == token))
    if report_id is None:
        raise Open311Error(404, f"Unknown token '{token}'.")
    return render(fmt, "service_requests", [{"service_request_id": str(report_id), "token": token}])


def _float(name: str, raw: str) -> float:
    if not ASCII_DECIMAL.fullmatch(raw):
        raise Open311Error(400, f"{name} must be a number in ASCII digits, like 31.2304.")
    value = float(raw)
    if value != value or value in {float("inf"), float("-inf")}:
        raise Open311Error(400, f"{name} must be a finite number.")
    return value


# The location check names the REST API's fields; Open311 clients know these names.
OPEN311_FIELD_NAMES = {"lon": "long", "address": "address_string"}


OPEN311_LOCATION_WORDS = {
    LOCATION_MISSING: "A location is required: lat and long, address_string or address_id.",
    COORDINATES_APART: "lat and long go together.",
    NO_POSITION_FIX: "lat 0, long 0 is not a real location.",
}


def _open311_words(error: InvalidField | InvalidFields) -> list[str]:
    """One description per message, naming every field it is about."""
    if error.code in OPEN311_LOCATION_WORDS:
        return [OPEN311_LOCATION_WORDS[error.code]]
    fields_by_message: dict[str, list[str]] = defaultdict(list)
    for name, messages in error.fields.items():
        for message in messages:
            fields_by_message[message].append(OPEN311_FIELD_NAMES.get(name, name))
    return [f"{', '.join(names)}: {message}" for message, names in fields_by_message.items()]


def _check_number_answers(
    definitions: tuple[Attribute, ...], answers: dict[str, list[str]]
) -> None:
    """Number answers in ASCII, like lat and long (float() also takes "５" and "3_0")."""
    for attribute in definitions:
        if attribute.datatype != "number":
            continue
        for value in (v.strip() for v in answers.get(attribute.code, [])):
            if value and not ASCII_DECIMAL.fullmatch(value):
                raise Open311Error(
                    400,
                    f"attribute[{attribute.code}]: '{value[:50]}' is not a number in ASCII digits.",
                )


def _extra_attributes(answers: dict[str, list[str]]) -> dict[str, str | list[str]]:
    """The answers to attributes the service does not ask about, kept as sent (one value as a
    string, several as a list), within bounds."""
    if len(answers) > MAX_EXTRA_ATTRIBUTES:
        name = list(answers)[MAX_EXTRA_ATTRIBUTES][:MAX_EXTRA_ATTRIBUTE_NAME_CHARS]
        raise Open311Error(
            400,
            f"attribute[{name}]: at most {MAX_EXTRA_ATTRIBUTES} attributes that the service "
            "does not ask about.",
        )
    extra: dict[str, str | list[str]] = {}
    for name, values in answers.items():
        if len(name) > MAX_EXTRA_ATTRIBUTE_NAME_CHARS:
            raise Open311Error(
                400,
                f"attribute[{name[:MAX_EXTRA_ATTRIBUTE_NAME_CHARS]}…]: an attribute name is at "
                f"most {MAX_EXTRA_ATTRIBUTE_NAME_CHARS} characters.",
            )
        if len(values) > MAX_EXTRA_ATTRIBUTE_VALUES:
            raise Open311Error(
                400, f"attribute[{name}]: at most {MAX_EXTRA_ATTRIBUTE_VALUES} values."
            )
        if any(len(value) > MAX_EXTRA_ATTRIBUTE_VALUE_CHARS for value in values):
            raise Open311Error(
                400,
                f"attribute[{name}]: a value is at most {MAX_EXTRA_ATTRIBUTE_VALUE_CHARS} "
                "characters.",
            )
        extra[name] = values[0] if len(values) == 1 else list(values)
    return extra


def _attribute_answers() -> dict[str, list[str]]:
    answers: dict[str, list[str]] = defaultdict(list)
    pattern = re.compile(r"^attribute\[([^\]]+)\](\[\])?$")
    for key in request.form:
        match = pattern.match(key)
        if match:
            answers[match.group(1)].extend(request.form.getlist(key))
    return dict(answers)


def _media_urls() -> list[str]:
    urls = [u.strip() for u in request.form.getlist("media_url") if u.strip()]
    if len(urls) > MAX_MEDIA_URLS:
        raise Open311Error(400, f"At most {MAX_MEDIA_URLS} media_url values.")
    for url in urls:
        parsed = urlparse(url)
        if (
            parsed.scheme not in {"http", "https"}
            or not parsed.netloc
            or len(url) > MAX_MEDIA_URL_CHARS
        ):
            raise Open311Error(400, f"media_url '{url[:100]}' is not an http(s) URL.")
    return urls


@bp.post("/requests.<fmt>")
@rate_limited("reports", _api_key)
def create_request(fmt: str) -> Response:
    _check_format(fmt)
    _check_jurisdiction()
    api_key = _api_key()
    caller = caller_for_key(api_key) if api_key else None
    if caller is None or caller.role != "reporter" or caller.reporter_id is None:
        raise Open311Error(403, "A valid api_key (a CityRelay reporter key) is required.")
    if request.mimetype not in {"application/x-www-form-urlencoded", "multipart/form-data"}:
        raise Open311Error(400, "POST as application/x-www-form-urlencoded or multipart/form-data.")
    form = request.form
    code = (form.get("service_code") or "").strip()
    if not code:
        raise Open311Error(400, "service_code is required.")
    category = read_session().get(Category, code)
    if category is None:
        raise Open311Error(404, f"Unknown service_code '{code}'.")

    # Decoded first: without lat and long, the first photo's EXIF GPS places the request.
    photos = read_photos(request.files.getlist("media"))
    lat_raw, lon_raw = form.get("lat", "").strip(), form.get("long", "").strip()
    address = (form.get("address_string") or "").strip()
    address_id = (form.get("address_id") or "").strip()
    lat = _float("lat", lat_raw) if lat_raw else None
    lon = _float("long", lon_raw) if lon_raw else None
    if lat is None and lon is None and (location := photo_location(photos)) is not None:
        lat, lon = location
    try:
        check_location(lat, lon, address, address_id)
    except (InvalidField, InvalidFields) as error:
        raise Open311Error(400, *_open311_words(error)) from None
    description = (form.get("description") or "").replace("\r\n", "\n").replace("\r", "\n")
    if len(description) > MAX_TEXT_CHARS:
        raise Open311Error(400, f"description is at most {MAX_TEXT_CHARS} characters.")

    definitions = attributes_for(read_session(), code)
    asked = {attribute.code for attribute in definitions}
    sent = _attribute_answers()
    # What the service does not ask about (FixMyStreet's report_url, say) is kept, unchecked.
    extra = _extra_attributes({k: v for k, v in sent.items() if k not in asked})
    known = {k: v for k, v in sent.items() if k in asked}
    _check_number_answers(definitions, known)
    answers, errors = validate_answers(code, definitions, known)
    if errors:
        raise Open311Error(400, *(f"attribute[{k}]: {v}" for k, v in errors.items()))
    media_urls = _media_urls()
    idempotency_key = idempotency_key_header()
    contact = {
        name: form[name].strip()[:MAX_CONTACT_VALUE_CHARS]
        for name in ("email", "device_id", "account_id", "first_name", "last_name", "phone")
        if form.get(name, "").strip()
    }
    new = NewReport(
        reporter_id=caller.reporter_id,
        channel="open311",
        text=description,
        lat=lat,
        lon=lon,
        address=address,
        address_id=address_id,
        category=code,
        attributes=answers,
        extra_attributes=extra,
        media_urls=media_urls,
        contact=contact,
        photos=photos,
        idempotency_key=idempotency_key,
        with_token=True,
    )
    try:
        with unit_of_work() as session:
            store_read_photos(session, photos)
            report, _replayed = file_report(session, new)
            report_id, token = report.id, report.token
    except IdempotencyConflict:
        raise Open311Error(
            400, "This Idempotency-Key was already used for another request."
        ) from None
    lang = _lang()
    name = category.name_en if lang == "en" else category.name_zh
    notice = f"{name}: {category.time_limit}" if category.time_limit else name
    answer = {
        "service_request_id": str(report_id),
        "token": token,
        "service_notice": notice,
        "account_id": contact.get("account_id"),
    }
    return render(fmt, "service_requests", [answer], 201)
