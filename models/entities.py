"""The domain tables. Read queries live in models.queries; nothing here commits."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from models.base import Base, UTCDateTime, utcnow
from models.limits import (
    MAX_ADDRESS_CHARS,
    MAX_ADDRESS_ID_CHARS,
    MAX_ATTRIBUTE_CODE_CHARS,
    MAX_ATTRIBUTE_DESCRIPTION_CHARS,
    MAX_CALENDAR_DAY_NAME_CHARS,
    MAX_CALENDAR_NAME_CHARS,
    MAX_CALENDAR_TIMEZONE_CHARS,
    MAX_CATEGORY_CODE_CHARS,
    MAX_DATATYPE_DESCRIPTION_CHARS,
    MAX_DISPLAY_NAME_CHARS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_KEYWORD_CHARS,
    MAX_LANGUAGE_TAG_CHARS,
    MAX_PLATFORM_CHARS,
    MAX_USERNAME_CHARS,
    MAX_VALUE_KEY_CHARS,
    MAX_VALUE_NAME_CHARS,
    MAX_WEBHOOK_DESCRIPTION_CHARS,
    MAX_WEBHOOK_SECRET_CHARS,
    MAX_WEBHOOK_URL_CHARS,
    OCCUPATIONS,
)

OFFICE_KINDS = ("district", "street", "community", "department")
# "office" is staff of its office; "supervisor" supervises its office and every office under it.
KEY_ROLES = ("reporter", "office", "supervisor", "admin")
# Console logins (cityrelay create-user): staff of an office, a supervisor of it and every office
# under it, or an admin.
USER_ROLES = ("staff", "supervisor", "admin")
CHANNELS = ("api", "open311", "web")

# A report is "received" until the pipeline has turned it into (or joined it to) a case.
REPORT_RECEIVED = "received"
REPORT_PROCESSED = "processed"
REPORT_STATES = (REPORT_RECEIVED, REPORT_PROCESSED)

# Case statuses: "triage" waits for a person to pick category or office; "routed" sits in an
# office's queue; the office accepts, works on, asks the reporter ("waiting"), resolves it, and a
# supervisor closes it with a closure. A case's history starts at "received", the state of the
# report it came from. routing.workflow decides the moves (a test keeps these names equal).
CASE_RECEIVED = "received"
CASE_TRIAGE = "triage"
CASE_ROUTED = "routed"
CASE_ACCEPTED = "accepted"
CASE_IN_PROGRESS = "in_progress"
CASE_WAITING = "waiting"
CASE_RESOLVED = "resolved"
CASE_CLOSED = "closed"
CASE_STATUSES = (
    CASE_TRIAGE,
    CASE_ROUTED,
    CASE_ACCEPTED,
    CASE_IN_PROGRESS,
    CASE_WAITING,
    CASE_RESOLVED,
    CASE_CLOSED,
)
CASE_CLOSURES = ("fixed", "duplicate", "invalid", "not_responsible", "no_further_action")
# Cases a "me too" report may join: waiting for an office, or in its hands and not yet done. A
# report of a problem after its case was resolved or closed opens a case of its own.
OPEN_CASE_STATUSES = (CASE_TRIAGE, CASE_ROUTED, CASE_ACCEPTED, CASE_IN_PROGRESS, CASE_WAITING)

# The Open311 datatypes of a category's questions (routing.attributes.DATATYPES, which a test
# keeps equal); the list types offer a set of values.
ATTRIBUTE_DATATYPES = (
    "string",
    "number",
    "datetime",
    "text",
    "singlevaluelist",
    "multivaluelist",
)

# A notification waits ("pending"), is being sent by a relay run that holds its lease
# ("sending"), reached every subscription that wanted it ("delivered"), was wanted by none
# ("skipped"), or failed too often and waits for an admin to replay it ("dead").
OUTBOX_PENDING = "pending"
OUTBOX_SENDING = "sending"
OUTBOX_DELIVERED = "delivered"
OUTBOX_SKIPPED = "skipped"
OUTBOX_DEAD = "dead"
OUTBOX_STATUSES = (OUTBOX_PENDING, OUTBOX_SENDING, OUTBOX_DELIVERED, OUTBOX_SKIPPED, OUTBOX_DEAD)

# Points are a ledger: an award when a case closes as fixed, and a reversal that cancels one
# award exactly (services.rewards). A reporter's balance is the sum of their entries.
POINTS_AWARD = "award"
POINTS_REVERSAL = "reversal"
POINTS_KINDS = (POINTS_AWARD, POINTS_REVERSAL)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


office_categories = Table(
    "office_categories",
    Base.metadata,
    Column("office_id", ForeignKey("offices.id", ondelete="CASCADE"), primary_key=True),
    Column("category_code", ForeignKey("categories.code"), primary_key=True),
)


class Category(Base):
    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(200))
    group_zh: Mapped[str] = mapped_column(String(100))
    standard_codes: Mapped[str] = mapped_column(String(200), default="")
    time_limit: Mapped[str | None] = mapped_column(String(60))
    time_limit_source: Mapped[str] = mapped_column(String(300), default="")
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)
    handled_by: Mapped[str] = mapped_column(String(100), default="")
    position: Mapped[int] = mapped_column(Integer, default=0)
    # A new report this close to an open case of this category, this soon after it opened,
    # joins the case ("me too") instead of opening another.
    merge_radius_m: Mapped[float] = mapped_column(Float, default=50.0, server_default="50")
    merge_window_hours: Mapped[float] = mapped_column(Float, default=24.0, server_default="24")


class Office(Base):
    __tablename__ = "offices"
    __table_args__ = (CheckConstraint(_in("kind", OFFICE_KINDS), name="kind"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(40), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    name_en: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(20))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), index=True)
    jurisdiction: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    # The office's working-hour calendar; None inherits its parent's, and at the top the
    # calendar named "default" (models.calendars).
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("calendars.id"), index=True)

    parent: Mapped[Office | None] = relationship(remote_side=[id])
    categories: Mapped[list[Category]] = relationship(
        secondary=office_categories, order_by=Category.position
    )
    calendar: Mapped[Calendar | None] = relationship()


# Exceptional days of a calendar: a public holiday stops the working clock on a day otherwise
# worked; an adjusted working day (调休) runs it on a day otherwise off.
CALENDAR_DAY_KINDS = ("holiday", "workday")


class Calendar(Base):
    """When offices work, as data: local working hours for each weekday, in ``timezone``, and
    the exceptional days. routing.sla.WorkingCalendar is built from it."""

    __tablename__ = "calendars"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(MAX_CALENDAR_NAME_CHARS), unique=True)
    timezone: Mapped[str] = mapped_column(String(MAX_CALENDAR_TIMEZONE_CHARS))
    # {"mon": [{"start": "08:30", "end": "12:00"}, ...], ..., "sun": []}
    weekly_hours: Mapped[dict[str, Any]] = mapped_column(JSON)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    days: Mapped[list[CalendarDay]] = relationship(
        back_populates="calendar", order_by="CalendarDay.day", cascade="all, delete-orphan"
    )


class CalendarDay(Base):
    __tablename__ = "calendar_days"
    __table_args__ = (
        UniqueConstraint("calendar_id", "day", name="uq_calendar_days_calendar_day"),
        CheckConstraint(_in("kind", CALENDAR_DAY_KINDS), name="kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    calendar_id: Mapped[int] = mapped_column(ForeignKey("calendars.id", ondelete="CASCADE"))
    day: Mapped[date]
    kind: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(MAX_CALENDAR_DAY_NAME_CHARS), default="")

    calendar: Mapped[Calendar] = relationship(back_populates="days")


class RoutingOverride(Base):
    """Inside ``area``'s jurisdiction, ``category`` goes to ``office`` whatever the offices there
    handle: the per-area exception to the handles-what rules."""

    __tablename__ = "routing_overrides"
    __table_args__ = (
        UniqueConstraint(
            "area_office_id", "category_code", name="uq_routing_overrides_area_category"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    area_office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))

    area: Mapped[Office] = relationship(foreign_keys=[area_office_id])
    office: Mapped[Office] = relationship(foreign_keys=[office_id])


class RuleVersion(Base):
    """A snapshot of every routing rule after a change. The newest is in force; a case records
    the version that routed it, so any decision can be replayed against the rules of its day."""

    __tablename__ = "rule_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    rules: Mapped[dict[str, Any]] = mapped_column(JSON)


class CategoryAttribute(Base):
    """A question a category asks of a report (an Open311 service attribute), in order."""

    __tablename__ = "category_attributes"
    __table_args__ = (
        UniqueConstraint("category_code", "code", name="uq_category_attributes_category_and_code"),
        CheckConstraint(_in("datatype", ATTRIBUTE_DATATYPES), name="datatype"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(MAX_ATTRIBUTE_CODE_CHARS))
    datatype: Mapped[str] = mapped_column(String(20))
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    description_zh: Mapped[str] = mapped_column(String(MAX_ATTRIBUTE_DESCRIPTION_CHARS))
    description_en: Mapped[str] = mapped_column(String(MAX_ATTRIBUTE_DESCRIPTION_CHARS))
    datatype_description: Mapped[str] = mapped_column(
        String(MAX_DATATYPE_DESCRIPTION_CHARS), default=""
    )
    # Inclusive bounds of a number answer; None leaves that side open.
    minimum: Mapped[float | None] = mapped_column(Float)
    maximum: Mapped[float | None] = mapped_column(Float)

    values: Mapped[list[CategoryAttributeValue]] = relationship(
        back_populates="attribute",
        order_by="CategoryAttributeValue.position",
        cascade="all, delete-orphan",
    )


class CategoryAttributeValue(Base):
    """One allowed answer of a list attribute, in order."""

    __tablename__ = "category_attribute_values"
    __table_args__ = (
        UniqueConstraint("attribute_id", "key", name="uq_category_attribute_values_attribute_key"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    attribute_id: Mapped[int] = mapped_column(
        ForeignKey("category_attributes.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    key: Mapped[str] = mapped_column(String(MAX_VALUE_KEY_CHARS))
    name_zh: Mapped[str] = mapped_column(String(MAX_VALUE_NAME_CHARS))
    name_en: Mapped[str] = mapped_column(String(MAX_VALUE_NAME_CHARS))

    attribute: Mapped[CategoryAttribute] = relationship(back_populates="values")


class CategoryKeyword(Base):
    """A word people search a category by (Open311 `keywords`), in order."""

    __tablename__ = "category_keywords"
    __table_args__ = (
        UniqueConstraint("category_code", "word", name="uq_category_keywords_category_word"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    position: Mapped[int] = mapped_column(Integer)
    word: Mapped[str] = mapped_column(String(MAX_KEYWORD_CHARS))
    lang: Mapped[str | None] = mapped_column(String(MAX_LANGUAGE_TAG_CHARS))


class CategorySettingsVersion(Base):
    """A snapshot of every category's questions and keywords after a change, like RuleVersion
    for the routing rules: the newest is in force, the older ones say what was asked when."""

    __tablename__ = "category_settings_versions"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    note: Mapped[str] = mapped_column(Text, default="")
    # The category the change was about; None when many were loaded at once.
    category_code: Mapped[str | None] = mapped_column(String(MAX_CATEGORY_CODE_CHARS))
    settings: Mapped[dict[str, Any]] = mapped_column(JSON)


class Reporter(Base):
    __tablename__ = "reporters"
    __table_args__ = (CheckConstraint(_in("occupation", OCCUPATIONS), name="occupation"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    display_name: Mapped[str] = mapped_column(String(MAX_DISPLAY_NAME_CHARS))
    occupation: Mapped[str] = mapped_column(String(20), default="citizen")
    platform: Mapped[str] = mapped_column(String(MAX_PLATFORM_CHARS), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ApiKey(Base):
    """Only a hash of the key is kept; the prefix finds the row without a table scan."""

    __tablename__ = "api_keys"
    __table_args__ = (CheckConstraint(_in("role", KEY_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(20))
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("reporters.id"))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"))
    label: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # None: never expires; from then on the key answers 401 like a revoked one.
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    reporter: Mapped[Reporter | None] = relationship()
    office: Mapped[Office | None] = relationship()


class Report(Base):
    """What a reporter submitted, kept as submitted."""

    __tablename__ = "reports"
    __table_args__ = (
        UniqueConstraint("reporter_id", "idempotency_key", name="uq_reports_reporter_idempotency"),
        CheckConstraint(_in("state", REPORT_STATES), name="state"),
        CheckConstraint(_in("channel", CHANNELS), name="channel"),
        # The statistics count reports by arrival, over the city and over given cases.
        Index(
            "ix_reports_received_at_cover",
            "received_at",
            postgresql_include=["id", "case_id", "reporter_id", "channel"],
        ),
        Index(
            "ix_reports_case_received",
            "case_id",
            "received_at",
            postgresql_include=["id", "reporter_id", "channel"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    channel: Mapped[str] = mapped_column(String(20), default="api")
    text: Mapped[str] = mapped_column(Text, default="")
    language: Mapped[str] = mapped_column(String(10), default="")
    # No coordinates when the reporter could only type an address or landmark.
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(MAX_ADDRESS_CHARS), default="")
    address_id: Mapped[str] = mapped_column(
        String(MAX_ADDRESS_ID_CHARS), default="", server_default=""
    )
    # Answers to the category's questions (Open311 service attributes), by attribute code.
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Open311 ``attribute[…]`` values that are not questions of the category (FixMyStreet's
    # report_url, say), kept as sent; None when there were none.
    extra_attributes: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    media_urls: Mapped[list[str]] = mapped_column(JSON, default=list)
    # What an integrator sent about the person (Open311 email, names, phone, device_id).
    contact: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    # Open311 tokens/{token} resolves this to the report's id.
    token: Mapped[str | None] = mapped_column(String(40), unique=True)
    requested_category: Mapped[str | None] = mapped_column(ForeignKey("categories.code"))
    idempotency_key: Mapped[str | None] = mapped_column(String(MAX_IDEMPOTENCY_KEY_CHARS))
    fingerprint: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(20), default=REPORT_RECEIVED, index=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when an office split the report out of a case it was wrongly merged into.
    no_merge: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0")
    # Set by the sweep, so a report whose message is merely queued is not enqueued again and again.
    last_enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)

    reporter: Mapped[Reporter] = relationship()
    photos: Mapped[list[Photo]] = relationship(
        back_populates="report", order_by="Photo.position", cascade="all, delete-orphan"
    )
    case: Mapped[Case | None] = relationship(back_populates="reports", foreign_keys=[case_id])


class Photo(Base):
    __tablename__ = "photos"

    id: Mapped[int] = mapped_column(primary_key=True)
    report_id: Mapped[int] = mapped_column(ForeignKey("reports.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(100))
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)

    report: Mapped[Report] = relationship(back_populates="photos")


class PhotoBlob(Base):
    """A stored photo's bytes, keyed by their SHA-256 (``services.photo_store``): every web
    machine reads the photos from the database it shares, and a photo in two reports, or
    uploaded again by a retry, is one row. ``Photo.filename`` and the after-photos of
    ``resolve`` events name it as ``<sha256>.<extension of content_type>``."""

    __tablename__ = "photo_blobs"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    content_type: Mapped[str] = mapped_column(String(50))
    size_bytes: Mapped[int] = mapped_column(Integer)
    data: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Case(Base):
    """The work item one or more reports become."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint(_in("status", CASE_STATUSES), name="status"),
        CheckConstraint(_in("closure", CASE_CLOSURES), name="closure"),
        # A closure exactly when closed.
        CheckConstraint(
            f"(status = '{CASE_CLOSED}') = (closure IS NOT NULL)", name="closure_when_closed"
        ),
        # The "me too" search (services.processing): the open cases of one category in a box,
        # received within a window. Only open cases, which stay few while closed ones pile up.
        # lon and the time are key columns, so they are checked in the index; with the id on
        # PostgreSQL (SQLite's indexes carry the rowid) and the status for SQLite (whose planner
        # checks the status again even when the index's condition implies it), the search
        # reads no table row.
        Index(
            "ix_cases_open_nearby",
            "category_code",
            "lat",
            "lon",
            "first_received_at",
            "status",
            postgresql_include=["id"],
            postgresql_where=text(_in("status", OPEN_CASE_STATUSES)),
            sqlite_where=text(_in("status", OPEN_CASE_STATUSES)),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    status: Mapped[str] = mapped_column(String(20), index=True)
    # How a closed case was closed (CASE_CLOSURES); None while it is not closed.
    closure: Mapped[str | None] = mapped_column(String(20))
    # Raised by every action on the case (services.casework): an action changes the case only
    # where id, status and version are still what it read, so of two at once exactly one wins.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # Who took the case on (set by "accept"): "key:<api key id>" until console users exist.
    assignee: Mapped[str | None] = mapped_column(String(100), index=True)
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"), index=True)
    confidence: Mapped[float | None] = mapped_column(Float)
    classification: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"), index=True)
    routing: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rule_version: Mapped[int | None] = mapped_column(ForeignKey("rule_versions.id"))
    # The model id of the classifier in force when the case opened (routing.classify.artifact),
    # so every classification can be traced to the model that made it.
    classifier_model: Mapped[str | None] = mapped_column(String(40))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(MAX_ADDRESS_CHARS), default="", server_default="")
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the overdue sweep when the due time passed while the case was in the office's
    # hands, and kept: once the case leaves those hands (resolved, closed) the flag is frozen.
    overdue_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    # The office above the handling office that was told the case is overdue (督办), and when.
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    escalated_office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"))
    opened_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the earliest of its reports was received (the window of "me too" counts from it),
    # kept with the case as reports join and leave it, so the search need not read reports.
    first_received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    category: Mapped[Category | None] = relationship()
    office: Mapped[Office | None] = relationship(foreign_keys=[office_id])
    escalated_office: Mapped[Office | None] = relationship(foreign_keys=[escalated_office_id])
    reports: Mapped[list[Report]] = relationship(
        back_populates="case", foreign_keys=[Report.case_id], order_by=Report.id
    )
    events: Mapped[list[CaseEvent]] = relationship(
        back_populates="case", order_by="CaseEvent.id", cascade="all, delete-orphan"
    )


class CaseEvent(Base):
    """Append-only history: a case's current status is the to_status of its last event."""

    __tablename__ = "case_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(40))
    from_status: Mapped[str | None] = mapped_column(String(20))
    to_status: Mapped[str] = mapped_column(String(20))
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    case: Mapped[Case] = relationship(back_populates="events")
    office: Mapped[Office | None] = relationship()


class OutboxMessage(Base):
    """A notification written in the same transaction as the change it announces; the relay
    (services.notifications) delivers it to the webhook subscriptions that want it."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(_in("status", OUTBOX_STATUSES), name="status"),
        # what the relay looks for: the due rows of a status
        Index("ix_outbox_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    topic: Mapped[str] = mapped_column(String(60))
    recipient: Mapped[str] = mapped_column(String(100))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(20), default=OUTBOX_PENDING, index=True)
    # Failed delivery rounds since it was written or last replayed.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str] = mapped_column(Text, default="", server_default="")
    # While "sending": the relay run that claimed it (its token) owns it until the lease
    # expires; then it is due again, so a run that died mid-way loses nothing.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dead_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Ids of the subscriptions that answered 2xx: a retry goes only to the others.
    delivered_to: Mapped[list[int]] = mapped_column(JSON, default=list, server_default="[]")

    replays: Mapped[list[OutboxReplay]] = relationship(
        back_populates="message", order_by="OutboxReplay.id", cascade="all, delete-orphan"
    )


class OutboxReplay(Base):
    """An admin put a dead notification back to pending: who, when, and how it had failed."""

    __tablename__ = "outbox_replays"

    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("outbox.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))
    attempts_before: Mapped[int] = mapped_column(Integer)
    last_error: Mapped[str] = mapped_column(Text, default="")

    message: Mapped[OutboxMessage] = relationship(back_populates="replays")


class WebhookSubscription(Base):
    """An endpoint that gets the notifications of some topics (and recipients) as signed POSTs.
    The secret is kept as given: signing needs it."""

    __tablename__ = "webhook_subscriptions"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(MAX_WEBHOOK_URL_CHARS))
    secret: Mapped[str] = mapped_column(String(MAX_WEBHOOK_SECRET_CHARS))
    # Topic patterns: "case.routed", "case.*", "*".
    topics: Mapped[list[str]] = mapped_column(JSON)
    # Recipient patterns ("office:PD-HG-02", "reporter:*", "triage", "*"); None: every one.
    recipients: Mapped[list[str] | None] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(MAX_WEBHOOK_DESCRIPTION_CHARS), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    updated_by: Mapped[str] = mapped_column(String(100), default="")


class PointsEntry(Base):
    """One line of the points ledger: never updated, never deleted. A reversal names the award
    it cancels, and an award is reversed at most once."""

    __tablename__ = "points_entries"
    __table_args__ = (
        CheckConstraint(_in("kind", POINTS_KINDS), name="kind"),
        CheckConstraint("points <> 0", name="points_not_zero"),
        UniqueConstraint("reverses_id", name="uq_points_entries_reverses_id"),
        # The leaderboard adds up the points of a window's days, of the whole city or of an
        # office's cases.
        Index(
            "ix_points_entries_day", "day", postgresql_include=["reporter_id", "case_id", "points"]
        ),
        Index(
            "ix_points_entries_case_day",
            "case_id",
            "day",
            postgresql_include=["reporter_id", "points"],
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"), index=True)
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    kind: Mapped[str] = mapped_column(String(20))
    # Signed: an award adds, a reversal takes away exactly what its award gave.
    points: Mapped[int] = mapped_column(Integer)
    # Why, as a code ("first_report", "me_too", "closed_invalid", ...).
    reason: Mapped[str] = mapped_column(String(40))
    note: Mapped[str] = mapped_column(Text, default="")
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("points_entries.id"))
    # The reporter's local day the entry counts against for the daily cap.
    day: Mapped[date]
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(100))


class User(Base):
    """A console login. Only an argon2 hash of the password is kept; a new user's password is
    shown once and must be changed at the first login."""

    __tablename__ = "users"
    __table_args__ = (CheckConstraint(_in("role", USER_ROLES), name="role"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(MAX_USERNAME_CHARS), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    must_change_password: Mapped[bool] = mapped_column(Boolean, default=True)
    role: Mapped[str] = mapped_column(String(20))
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"), index=True)
    display_name: Mapped[str] = mapped_column(String(MAX_DISPLAY_NAME_CHARS), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    office: Mapped[Office] = relationship()


class ResponseTemplate(Base):
    """A ready answer staff pick for a public note (FixMyStreet's response templates): for one
    category, or for every category when ``category_code`` is None, and for one action."""

    __tablename__ = "response_templates"

    id: Mapped[int] = mapped_column(primary_key=True)
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"), index=True)
    action: Mapped[str] = mapped_column(String(40))
    position: Mapped[int] = mapped_column(Integer, default=0)
    title_zh: Mapped[str] = mapped_column(String(100))
    title_en: Mapped[str] = mapped_column(String(100))
    text_zh: Mapped[str] = mapped_column(Text)
    text_en: Mapped[str] = mapped_column(Text)


class Recheck(Base):
    """A reporter's answer to "still fixed?" about a case closed as fixed: one per reporter per
    closing, so two different people's "no" is what reopens it."""

    __tablename__ = "rechecks"
    __table_args__ = (
        UniqueConstraint(
            "case_id", "reporter_id", "closed_event_id", name="uq_rechecks_case_reporter_closing"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("reporters.id"))
    # The "close" event the answer is about.
    closed_event_id: Mapped[int] = mapped_column(ForeignKey("case_events.id"))
    # The report that was filed nearby when the check was offered, if any.
    report_id: Mapped[int | None] = mapped_column(ForeignKey("reports.id"))
    still_fixed: Mapped[bool] = mapped_column(Boolean)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaseStat(Base):
    """What a case's events say for the statistics (routing.statistics.case_stats), one row per
    case, rewritten in the transaction that writes one of its events (services.statistics).
    ``cityrelay rebuild-rollups`` rebuilds every row from the events."""

    __tablename__ = "case_stats"
    __table_args__ = (
        Index("ix_case_stats_reported_day_office", "reported_day", "office_id"),
        Index("ix_case_stats_office_reported_day", "office_id", "reported_day"),
        # The backlog (open by status, overdue now, the oldest open case) reads only the open
        # cases, a few per cent of the table.
        Index(
            "ix_case_stats_open",
            "status",
            "due_at",
            postgresql_include=["reported_at", "case_id", "office_id"],
            postgresql_where=text("status <> 'closed'"),
            sqlite_where=text("status <> 'closed'"),
        ),
        # The received count and the leaderboard join reports and points to these rows, by
        # case and by office, reading only what the figures need.
        Index(
            "ix_case_stats_case_id_cover",
            "case_id",
            postgresql_include=["first_report_id", "office_id", "status", "closure"],
        ),
        Index(
            "ix_case_stats_office_cover",
            "office_id",
            postgresql_include=["case_id", "first_report_id", "status", "closure"],
        ),
        # The cases whose due time is still ahead: the only ones whose figures change with the
        # clock, read beside the monthly rows (stats_months) that cannot know the time.
        Index(
            "ix_case_stats_due_at",
            "due_at",
            postgresql_include=[
                "reported_day",
                "office_id",
                "category_code",
                "status",
                "handled_at",
            ],
        ),
    )

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    office_id: Mapped[int | None] = mapped_column(ForeignKey("offices.id"))
    category_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"), index=True)
    first_report_id: Mapped[int] = mapped_column(ForeignKey("reports.id"))
    # Of the case's first report and its reporter: never a name.
    channel: Mapped[str] = mapped_column(String(20))
    occupation: Mapped[str] = mapped_column(String(20))
    reports_count: Mapped[int] = mapped_column(Integer)
    reported_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # The day of reported_at in the office calendar's time zone: the anchor of the figures.
    reported_day: Mapped[date] = mapped_column(Date)
    # Its week's Monday and its month's first day, to group by week and month in any database.
    reported_week: Mapped[date] = mapped_column(Date)
    reported_month: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))
    closure: Mapped[str | None] = mapped_column(String(20))
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    routed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    handled_on_time: Mapped[bool | None] = mapped_column(Boolean)
    closed_on_time: Mapped[bool | None] = mapped_column(Boolean)
    extended: Mapped[bool] = mapped_column(Boolean)
    confirmed: Mapped[bool] = mapped_column(Boolean)
    reopened: Mapped[bool] = mapped_column(Boolean)
    rework_count: Mapped[int] = mapped_column(Integer)
    accept_hours: Mapped[float | None] = mapped_column(Float)
    accept_working_hours: Mapped[float | None] = mapped_column(Float)
    resolve_hours: Mapped[float | None] = mapped_column(Float)
    resolve_working_hours: Mapped[float | None] = mapped_column(Float)
    close_hours: Mapped[float | None] = mapped_column(Float)
    close_working_hours: Mapped[float | None] = mapped_column(Float)


# What each case adds to its month's row of ``stats_months``: counts over the cases reported in
# the month (none of them depends on the moment they are read) and the reports received in it.
MONTHLY_COUNTS = (
    "cases", "routed", "accepted", "resolved", "closed", "closed_fixed", "closed_on_time",
    "reopened", "rework", "reworked_cases", "handled", "handled_on_time", "extended",
    "confirmed", "open_without_due", "unhandled_without_due", "unhandled_with_due",
    "first_rider", "first_courier", "first_driver", "first_citizen", "received", "merged",
)  # fmt: skip


class CaseReportDay(Base):
    """How many of a case's reports arrived on each day (in the office calendar's time zone),
    and of them how many joined it after its first: what the case added to the received counts
    of the monthly and daily tables, kept so that the next change can take exactly that back."""

    __tablename__ = "case_report_days"

    case_id: Mapped[int] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    received: Mapped[int] = mapped_column(Integer)
    merged: Mapped[int] = mapped_column(Integer)


class _Counts:
    """The counts (``MONTHLY_COUNTS``) each table added up ahead keeps per row."""

    cases: Mapped[int] = mapped_column(Integer, default=0)
    routed: Mapped[int] = mapped_column(Integer, default=0)
    accepted: Mapped[int] = mapped_column(Integer, default=0)
    resolved: Mapped[int] = mapped_column(Integer, default=0)
    closed: Mapped[int] = mapped_column(Integer, default=0)
    closed_fixed: Mapped[int] = mapped_column(Integer, default=0)
    closed_on_time: Mapped[int] = mapped_column(Integer, default=0)
    reopened: Mapped[int] = mapped_column(Integer, default=0)
    rework: Mapped[int] = mapped_column(Integer, default=0)
    reworked_cases: Mapped[int] = mapped_column(Integer, default=0)
    handled: Mapped[int] = mapped_column(Integer, default=0)
    handled_on_time: Mapped[int] = mapped_column(Integer, default=0)
    extended: Mapped[int] = mapped_column(Integer, default=0)
    confirmed: Mapped[int] = mapped_column(Integer, default=0)
    open_without_due: Mapped[int] = mapped_column(Integer, default=0)
    unhandled_without_due: Mapped[int] = mapped_column(Integer, default=0)
    unhandled_with_due: Mapped[int] = mapped_column(Integer, default=0)
    first_rider: Mapped[int] = mapped_column(Integer, default=0)
    first_courier: Mapped[int] = mapped_column(Integer, default=0)
    first_driver: Mapped[int] = mapped_column(Integer, default=0)
    first_citizen: Mapped[int] = mapped_column(Integer, default=0)
    received: Mapped[int] = mapped_column(Integer, default=0)
    merged: Mapped[int] = mapped_column(Integer, default=0)


class StatsMonth(_Counts, Base):
    """The ``case_stats`` rows added up per month, office and category, kept in step with them
    in the same flush, so the figures of whole months are read from a few rows per office
    instead of every case. ``office_key`` 0 is no office yet, ``category_key`` '' no category."""

    __tablename__ = "stats_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    office_key: Mapped[int] = mapped_column(Integer, primary_key=True)
    category_key: Mapped[str] = mapped_column(String(40), primary_key=True)


class _CountsAndTimes(_Counts):
    """Counts as in ``stats_months``, and the times of its cases: counts per grid value of each
    of the six times (``routing.time_grid.pack``), from which the medians and 90th percentiles
    of any set of rows add up."""

    times: Mapped[bytes | None] = mapped_column(LargeBinary)


class StatsOfficeMonth(_CountsAndTimes, Base):
    """Per month and office, every category: what the figures of offices read."""

    __tablename__ = "stats_office_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    office_key: Mapped[int] = mapped_column(Integer, primary_key=True)


class StatsCategoryMonth(_CountsAndTimes, Base):
    """Per month and category, every office: what the figures of the whole city read."""

    __tablename__ = "stats_category_months"

    month: Mapped[date] = mapped_column(Date, primary_key=True)
    category_key: Mapped[str] = mapped_column(String(40), primary_key=True)


class StatsOfficeDay(_CountsAndTimes, Base):
    """Per day and office: the days of a window around its whole months."""

    __tablename__ = "stats_office_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    office_key: Mapped[int] = mapped_column(Integer, primary_key=True)


class StatsCategoryDay(_CountsAndTimes, Base):
    """Per day and category: the days of a window around its whole months."""

    __tablename__ = "stats_category_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    category_key: Mapped[str] = mapped_column(String(40), primary_key=True)


class ReporterPointsYear(Base):
    """A reporter's points per month of one year (by the ledger's own day), one row a year:
    the leaderboard of a year reads two rows a reporter instead of every ledger entry. Kept
    in step with the ledger in the flush that writes an entry (services.statistics)."""

    __tablename__ = "reporter_points_years"
    __table_args__ = (Index("ix_reporter_points_years_year", "year"),)

    reporter_id: Mapped[int] = mapped_column(
        ForeignKey("reporters.id", ondelete="CASCADE"), primary_key=True
    )
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    points_01: Mapped[int] = mapped_column(Integer, default=0)
    points_02: Mapped[int] = mapped_column(Integer, default=0)
    points_03: Mapped[int] = mapped_column(Integer, default=0)
    points_04: Mapped[int] = mapped_column(Integer, default=0)
    points_05: Mapped[int] = mapped_column(Integer, default=0)
    points_06: Mapped[int] = mapped_column(Integer, default=0)
    points_07: Mapped[int] = mapped_column(Integer, default=0)
    points_08: Mapped[int] = mapped_column(Integer, default=0)
    points_09: Mapped[int] = mapped_column(Integer, default=0)
    points_10: Mapped[int] = mapped_column(Integer, default=0)
    points_11: Mapped[int] = mapped_column(Integer, default=0)
    points_12: Mapped[int] = mapped_column(Integer, default=0)


EXPORT_STATUSES = ("pending", "done", "failed")


class Export(Base):
    """A CSV export too large to answer at once: a task writes the file into ``export_chunks``,
    the requester polls, then downloads it through any web machine."""

    __tablename__ = "exports"
    __table_args__ = (
        CheckConstraint(_in("status", EXPORT_STATUSES), name="status"),
        Index("ix_exports_status_created_at", "status", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    # What is exported: the resolved selection (window, office ids, filters).
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    # Who asked ("key:<id>" or "user:<id>"): only they, or an admin, may read it.
    requested_by: Mapped[str] = mapped_column(String(100), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    rows: Mapped[int | None] = mapped_column(Integer)
    # The file's length once done; None for an export whose file was never stored here (one
    # finished before exports moved into the database).
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str] = mapped_column(Text, default="", server_default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set by the sweep, so an export whose message is merely queued is not enqueued again.
    last_enqueued_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ExportChunk(Base):
    """A piece of a finished export's file, about ``services.exports.CHUNK_BYTES`` long, keyed by
    the offset of its first byte: the task and a download each hold one piece in memory, however
    long the file. Written in the task's transaction with the export turning ``done``, so a
    ``done`` export has all its pieces; deleted with its export."""

    __tablename__ = "export_chunks"

    export_id: Mapped[int] = mapped_column(
        ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True
    )
    start: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class SpikeAlert(Base):
    """A spike announced (routing.spikes): a category out of line in a community. One per
    community, category and local day, so a rerun or a second beat announces nothing twice;
    the task also skips a spike announced less than 24 hours ago (services.spikes)."""

    __tablename__ = "spike_alerts"
    __table_args__ = (
        UniqueConstraint(
            "office_id", "category_code", "day", name="uq_spike_alerts_office_category_day"
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The community office.
    office_id: Mapped[int] = mapped_column(ForeignKey("offices.id"))
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    # The local day (CITYRELAY_TIMEZONE) it was announced on.
    day: Mapped[date] = mapped_column(Date)
    announced_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # What the rule saw when it was announced.
    last_24h: Mapped[int] = mapped_column(Integer)
    baseline_per_day: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
