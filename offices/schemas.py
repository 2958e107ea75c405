"""What offices and admins send and get back under /api/v1/cases and /api/v1/admin. Output
fields marked ``required`` are always present (the OpenAPI description says so; a dump never
checks it)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate

from models.entities import CASE_CLOSURES, CASE_ROUTED, CASE_TRIAGE, OUTBOX_STATUSES
from models.limits import (
    MAX_ATTRIBUTE_CODE_CHARS,
    MAX_ATTRIBUTE_DESCRIPTION_CHARS,
    MAX_ATTRIBUTES_PER_CATEGORY,
    MAX_DATATYPE_DESCRIPTION_CHARS,
    MAX_EXTENSION_HOURS,
    MAX_KEYWORD_CHARS,
    MAX_KEYWORDS_PER_CATEGORY,
    MAX_LANGUAGE_TAG_CHARS,
    MAX_NOTE_CHARS,
    MAX_OFFICE_CODE_CHARS,
    MAX_OUTBOX_PAGE,
    MAX_VALUE_KEY_CHARS,
    MAX_VALUE_NAME_CHARS,
    MAX_VALUES_PER_ATTRIBUTE,
    MAX_WEBHOOK_DESCRIPTION_CHARS,
    MAX_WEBHOOK_PATTERNS,
    MAX_WEBHOOK_SECRET_CHARS,
    MAX_WEBHOOK_URL_CHARS,
    MAX_WEBHOOKS,
    MERGE_RADIUS_RANGE_M,
    MERGE_WINDOW_RANGE_HOURS,
    MIN_WEBHOOK_SECRET_CHARS,
)
from routing.attributes import DATATYPES
from routing.webhooks import MAX_PATTERN_CHARS
from web import numbers
from web.urls import MAX_ROW_ID

# ---------- cases ----------


class RejectIn(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=2, max=MAX_NOTE_CHARS))


class SplitIn(Schema):
    class Meta:
        unknown = RAISE

    report_id = numbers.Integer(required=True, strict=True)


class CaseRouting(Schema):
    case_id = numbers.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf([CASE_ROUTED, CASE_TRIAGE]))
    office = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "Code of the office it went to; null when sent to triage."},
    )
    routing = fields.Dict(
        required=True, metadata={"description": "How it was routed, and the offices excluded."}
    )


class SplitAccepted(Schema):
    case_id = numbers.Integer(required=True)
    report_id = numbers.Integer(required=True)
    status_url = fields.String(
        required=True, metadata={"format": "uri", "description": "Follow the report here."}
    )


# ---------- the actions of a case's life (routing.workflow) ----------


def _not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def _text(description: str) -> fields.String:
    return fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_NOTE_CHARS), _not_blank],
        metadata={"description": description},
    )


def _optional_note() -> fields.String:
    return fields.String(
        load_default="",
        validate=validate.Length(max=MAX_NOTE_CHARS),
        metadata={"description": "Optional, recorded on the case's timeline."},
    )


class NoteIn(Schema):
    class Meta:
        unknown = RAISE

    note = _optional_note()


class AskIn(Schema):
    class Meta:
        unknown = RAISE

    question = _text("What the reporters are asked; the case waits for their answer.")


class ResolveIn(Schema):
    class Meta:
        unknown = RAISE

    note = _text("What was done (the reporters see it).")


class TransferIn(Schema):
    class Meta:
        unknown = RAISE

    office = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_OFFICE_CODE_CHARS),
        metadata={"description": "Code of the office that takes the case over."},
    )
    reason = _text("Why it is that office's case.")


class ExtendIn(Schema):
    class Meta:
        unknown = RAISE

    hours = numbers.Integer(
        required=True,
        strict=True,
        validate=validate.Range(1, MAX_EXTENSION_HOURS),
        metadata={"description": "How much later the case may be due, once a supervisor agrees."},
    )
    reason = _text("Why more time is needed.")


class CloseIn(Schema):
    class Meta:
        unknown = RAISE

    closure = fields.String(
        required=True,
        validate=validate.OneOf(CASE_CLOSURES),
        metadata={"description": "fixed only for a resolved case."},
    )
    note = _optional_note()


class ReworkIn(Schema):
    class Meta:
        unknown = RAISE

    note = _text("What is still not right.")


# ---------- rules administration ----------


class OfficeCategoriesIn(Schema):
    class Meta:
        unknown = RAISE

    categories = fields.List(fields.String(), required=True)
    note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_CHARS))


class MergeSettingsIn(Schema):
    class Meta:
        unknown = RAISE

    radius_m = numbers.Float(required=True, validate=validate.Range(*MERGE_RADIUS_RANGE_M))
    window_hours = numbers.Float(required=True, validate=validate.Range(*MERGE_WINDOW_RANGE_HOURS))


class OverrideIn(Schema):
    class Meta:
        unknown = RAISE

    area = fields.String(
        required=True, metadata={"description": "Code of an office with a jurisdiction."}
    )
    category = fields.String(required=True)
    office = fields.String(
        required=True, allow_none=True, metadata={"description": "null removes the override."}
    )
    note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_CHARS))


class OverrideOut(Schema):
    area = fields.String(required=True)
    category = fields.String(required=True)
    office = fields.String(required=True)


class RulesOut(Schema):
    handles = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        required=True,
        metadata={"description": "Office code to the categories it handles in its jurisdiction."},
    )
    overrides = fields.List(fields.Nested(OverrideOut), required=True)


class RuleSetOut(Schema):
    version = numbers.Integer(
        required=True, allow_none=True, metadata={"description": "null before any version."}
    )
    rules = fields.Nested(RulesOut, required=True)


class RuleVersionSummaryOut(Schema):
    version = numbers.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    note = fields.String(required=True)


class RuleVersionOut(RuleVersionSummaryOut):
    rules = fields.Nested(RulesOut, required=True)


class MergeSettingsOut(Schema):
    code = fields.String(required=True)
    radius_m = numbers.Float(required=True)
    window_hours = numbers.Float(required=True)


# ---------- category settings: the questions a category asks, and its keywords ----------


class ChoiceIn(Schema):
    class Meta:
        unknown = RAISE

    key = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_VALUE_KEY_CHARS),
        metadata={"description": "What a client sends: letters, digits, _, . and -."},
    )
    name_zh = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_VALUE_NAME_CHARS)
    )
    name_en = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_VALUE_NAME_CHARS)
    )


class AttributeIn(Schema):
    class Meta:
        unknown = RAISE

    code = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_ATTRIBUTE_CODE_CHARS),
        metadata={"description": "Lower-case letters, digits and _, starting with a letter."},
    )
    datatype = fields.String(required=True, validate=validate.OneOf(DATATYPES))
    required = fields.Boolean(load_default=False)
    description_zh = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_ATTRIBUTE_DESCRIPTION_CHARS)
    )
    description_en = fields.String(
        required=True, validate=validate.Length(min=1, max=MAX_ATTRIBUTE_DESCRIPTION_CHARS)
    )
    datatype_description = fields.String(
        load_default="", validate=validate.Length(max=MAX_DATATYPE_DESCRIPTION_CHARS)
    )
    minimum = numbers.Float(
        load_default=None,
        allow_none=True,
        metadata={"description": "Smallest answer allowed (number attributes only)."},
    )
    maximum = numbers.Float(
        load_default=None,
        allow_none=True,
        metadata={"description": "Largest answer allowed (number attributes only)."},
    )
    values = fields.List(
        fields.Nested(ChoiceIn),
        load_default=list,
        validate=validate.Length(max=MAX_VALUES_PER_ATTRIBUTE),
        metadata={
            "description": "The allowed answers, in order: at least one for singlevaluelist "
            "and multivaluelist, none for the other datatypes."
        },
    )


class AttributesIn(Schema):
    class Meta:
        unknown = RAISE

    attributes = fields.List(
        fields.Nested(AttributeIn),
        required=True,
        validate=validate.Length(max=MAX_ATTRIBUTES_PER_CATEGORY),
        metadata={"description": "Every question the category asks, in order; [] asks none."},
    )
    note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_CHARS))


class KeywordIn(Schema):
    class Meta:
        unknown = RAISE

    word = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_KEYWORD_CHARS),
        metadata={"description": "No commas: Open311 lists keywords joined by commas."},
    )
    lang = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=MAX_LANGUAGE_TAG_CHARS),
        metadata={"description": "A language tag such as zh or en; optional."},
    )


class KeywordsIn(Schema):
    class Meta:
        unknown = RAISE

    keywords = fields.List(
        fields.Nested(KeywordIn),
        required=True,
        validate=validate.Length(max=MAX_KEYWORDS_PER_CATEGORY),
        metadata={"description": "Every keyword of the category, in order."},
    )
    note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_CHARS))


class ChoiceOut(Schema):
    key = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)


class AttributeOut(Schema):
    code = fields.String(required=True)
    datatype = fields.String(required=True, validate=validate.OneOf(DATATYPES))
    required = fields.Boolean(required=True)
    description_zh = fields.String(required=True)
    description_en = fields.String(required=True)
    datatype_description = fields.String(required=True)
    minimum = numbers.Float(required=True, allow_none=True)
    maximum = numbers.Float(required=True, allow_none=True)
    values = fields.List(fields.Nested(ChoiceOut), required=True)


class KeywordOut(Schema):
    word = fields.String(required=True)
    lang = fields.String(required=True, allow_none=True)


class CategorySettingsOut(Schema):
    code = fields.String(required=True)
    version = numbers.Integer(
        required=True,
        allow_none=True,
        metadata={"description": "The category settings version in force; null before any."},
    )
    attributes = fields.List(fields.Nested(AttributeOut), required=True)
    keywords = fields.List(fields.Nested(KeywordOut), required=True)


class CategorySnapshotOut(Schema):
    attributes = fields.List(fields.Nested(AttributeOut), required=True)
    keywords = fields.List(fields.Nested(KeywordOut), required=True)


class CategorySettingsVersionSummaryOut(Schema):
    version = numbers.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    note = fields.String(required=True)
    category = fields.String(
        required=True,
        allow_none=True,
        metadata={"description": "The category changed; null when defaults were loaded."},
    )


class CategorySettingsVersionOut(CategorySettingsVersionSummaryOut):
    settings = fields.Dict(
        keys=fields.String(),
        values=fields.Nested(CategorySnapshotOut),
        required=True,
        metadata={"description": "Every category's questions and keywords as they were."},
    )


# ---------- notifications: webhook subscriptions and the outbox ----------


class WebhookIn(Schema):
    class Meta:
        unknown = RAISE

    id = numbers.Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=validate.Range(min=1),
        metadata={
            "description": "An existing webhook (its id from GET) to keep and change; leave "
            "it out to add a new one."
        },
    )
    url = fields.String(
        required=True,
        validate=validate.Length(min=1, max=MAX_WEBHOOK_URL_CHARS),
        metadata={
            "description": "Where the notifications are POSTed: http or https, no user name "
            "or password; the host must be one CITYRELAY_WEBHOOK_HOSTS names, when it is set."
        },
    )
    secret = fields.String(
        load_default=None,
        validate=validate.Length(min=MIN_WEBHOOK_SECRET_CHARS, max=MAX_WEBHOOK_SECRET_CHARS),
        metadata={
            "description": "The HMAC-SHA256 key of the signatures: printable ASCII. Needed for "
            "a new webhook; left out, an existing webhook keeps its secret. Never shown again."
        },
    )
    topics = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_PATTERN_CHARS)),
        required=True,
        validate=validate.Length(min=1, max=MAX_WEBHOOK_PATTERNS),
        metadata={"description": "Topics wanted: 'case.routed', 'case.*' or '*'."},
    )
    recipients = fields.List(
        fields.String(validate=validate.Length(min=1, max=MAX_PATTERN_CHARS)),
        load_default=None,
        allow_none=True,
        validate=validate.Length(min=1, max=MAX_WEBHOOK_PATTERNS),
        metadata={
            "description": "Recipients wanted: 'office:PD-HG-02', 'office:*', 'reporter:*', "
            "'reporter:17', 'triage' or '*'; left out or null: every recipient."
        },
    )
    active = fields.Boolean(
        load_default=True, metadata={"description": "An inactive webhook gets nothing."}
    )
    description = fields.String(
        load_default="", validate=validate.Length(max=MAX_WEBHOOK_DESCRIPTION_CHARS)
    )


class WebhooksIn(Schema):
    class Meta:
        unknown = RAISE

    webhooks = fields.List(
        fields.Nested(WebhookIn),
        required=True,
        validate=validate.Length(max=MAX_WEBHOOKS),
        metadata={"description": "Every webhook there is to be; one not listed is removed."},
    )


class WebhookOut(Schema):
    id = numbers.Integer(required=True)
    url = fields.String(required=True)
    topics = fields.List(fields.String(), required=True)
    recipients = fields.List(
        fields.String(),
        required=True,
        allow_none=True,
        metadata={"description": "null: every recipient."},
    )
    active = fields.Boolean(required=True)
    description = fields.String(required=True)
    created_at = fields.AwareDateTime(required=True)
    updated_at = fields.AwareDateTime(required=True)
    updated_by = fields.String(required=True)


class OutboxQuery(Schema):
    class Meta:
        unknown = RAISE

    status = fields.String(
        load_default=None,
        validate=validate.OneOf(OUTBOX_STATUSES),
        metadata={"description": "Only rows in this state, e.g. dead (the dead letters)."},
    )
    limit = numbers.Integer(
        load_default=100,
        validate=validate.Range(min=1, max=MAX_OUTBOX_PAGE),
        metadata={"description": "At most this many rows."},
    )
    before = numbers.Integer(
        load_default=None,
        validate=validate.Range(min=1, max=MAX_ROW_ID),
        metadata={"description": "Only rows with a smaller id: the next page back."},
    )


class OutboxReplayOut(Schema):
    at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    attempts_before = numbers.Integer(required=True)
    last_error = fields.String(required=True)


class OutboxMessageOut(Schema):
    id = numbers.Integer(required=True)
    topic = fields.String(required=True)
    recipient = fields.String(required=True)
    case_id = numbers.Integer(required=True, allow_none=True)
    payload = fields.Dict(required=True)
    status = fields.String(required=True, validate=validate.OneOf(OUTBOX_STATUSES))
    attempts = numbers.Integer(
        required=True,
        metadata={"description": "Failed delivery rounds since it was written or replayed."},
    )
    created_at = fields.AwareDateTime(required=True)
    next_attempt_at = fields.AwareDateTime(required=True)
    last_attempt_at = fields.AwareDateTime(required=True, allow_none=True)
    last_error = fields.String(
        required=True, metadata={"description": "What the endpoints said when it last failed."}
    )
    delivered_at = fields.AwareDateTime(required=True, allow_none=True)
    dead_at = fields.AwareDateTime(required=True, allow_none=True)
    delivered_to = fields.List(
        numbers.Integer(),
        required=True,
        metadata={"description": "Ids of the webhooks that answered 2xx."},
    )
    replays = fields.List(
        fields.Nested(OutboxReplayOut),
        required=True,
        metadata={"description": "Each time an admin replayed it, oldest first."},
    )
