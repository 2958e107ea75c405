"""marshmallow schemas for what the API takes in and gives out."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from intake.recheck_schemas import RecheckOfferOut
from models.entities import CASE_CLOSURES, CASE_STATUSES, CHANNELS, REPORT_RECEIVED
from models.limits import (
    MAX_ADDRESS_CHARS,
    MAX_CATEGORY_CODE_CHARS,
    MAX_DISPLAY_NAME_CHARS,
    MAX_NOTE_CHARS,
    MAX_PLATFORM_CHARS,
    MAX_TEXT_CHARS,
    OCCUPATIONS,
)
from routing.workflow import ACTIONS
from services.errors import InvalidField, InvalidFields
from services.locations import NO_FIX, check_location
from web import numbers

# What a report's (or its case's) status can be, and what a case's history records.
REPORT_STATUSES = (REPORT_RECEIVED, *CASE_STATUSES)
EVENT_ACTIONS = (
    "received",
    "classified",
    "routed",
    "triaged",
    "rejected",
    "merged",
    "split",
    "escalate",
    *(action for action in ACTIONS if action != "reject"),
)

# What clients send, folded onto the three forms the classifier and the pages know.
LANGUAGE_ALIASES = {
    "zh": "zh-Hans",
    "zh-cn": "zh-Hans",
    "zh-sg": "zh-Hans",
    "zh-hans": "zh-Hans",
    "zh-tw": "zh-Hant",
    "zh-hk": "zh-Hant",
    "zh-mo": "zh-Hant",
    "zh-hant": "zh-Hant",
    "en": "en",
    "en-us": "en",
    "en-gb": "en",
}


class LanguageField(fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        raw = super()._deserialize(value, attr, data, **kwargs)
        folded = LANGUAGE_ALIASES.get(raw.strip().lower().replace("_", "-"))
        if folded is None:
            raise ValidationError(
                f"Must be one of: {', '.join(sorted(set(LANGUAGE_ALIASES.values())))}."
            )
        return folded


class ReportIn(Schema):
    class Meta:
        unknown = RAISE

    text = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_TEXT_CHARS),
        metadata={"description": "What is wrong, in any language."},
    )
    lat = numbers.Float(
        load_default=None,
        allow_nan=False,
        validate=validate.Range(-90, 90),
        metadata={"description": f"WGS-84 latitude, with lon. {NO_FIX}"},
    )
    lon = numbers.Float(
        load_default=None,
        allow_nan=False,
        validate=validate.Range(-180, 180),
        metadata={"description": "WGS-84 longitude, with lat."},
    )
    category = fields.String(
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=MAX_CATEGORY_CODE_CHARS),
        metadata={"description": "A category code from /api/v1/categories; else classified."},
    )
    address = fields.String(
        load_default="",
        validate=validate.Length(max=MAX_ADDRESS_CHARS),
        metadata={"description": "An address or landmark; enough without coordinates."},
    )
    lang = LanguageField(
        load_default=None,
        allow_none=True,
        metadata={
            "description": "The text's language (any case, '_' or '-'); detected when absent.",
            "enum": [*LANGUAGE_ALIASES, None],
        },
    )

    @validates_schema
    def _a_location(self, data: dict[str, Any], **_: Any) -> None:
        try:
            check_location(data.get("lat"), data.get("lon"), data.get("address", ""))
        except InvalidFields as error:
            raise ValidationError(error.fields) from None
        except InvalidField as error:
            raise ValidationError(error.message, error.field) from None


class ReporterIn(Schema):
    class Meta:
        unknown = RAISE

    display_name = fields.String(
        load_default="", validate=validate.Length(max=MAX_DISPLAY_NAME_CHARS)
    )
    occupation = fields.String(load_default="rider", validate=validate.OneOf(OCCUPATIONS))
    platform = fields.String(load_default="", validate=validate.Length(max=MAX_PLATFORM_CHARS))


class ReporterCreated(Schema):
    id = numbers.Integer(required=True)
    display_name = fields.String(required=True)
    occupation = fields.String(required=True, validate=validate.OneOf(OCCUPATIONS))
    platform = fields.String(required=True)
    key = fields.String(
        required=True,
        metadata={"description": "The reporter key, shown this once: send it as a Bearer token."},
    )


class ReportAccepted(Schema):
    id = numbers.Integer(required=True)
    status = fields.String(
        required=True,
        validate=validate.OneOf(REPORT_STATUSES),
        metadata={"description": "received until routed (a retry may find it further on)."},
    )
    status_url = fields.String(
        required=True, metadata={"format": "uri", "description": "Follow the report here."}
    )
    recheck = fields.List(
        fields.Nested(RecheckOfferOut),
        required=True,
        metadata={
            "description": 'Cases near the report closed as fixed lately: a one-tap "still '
            'fixed?" for each (empty for a report without a position).'
        },
    )


class OfficeRef(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    name_en = fields.String(required=True)


class EventOut(Schema):
    at = fields.AwareDateTime(required=True)
    action = fields.String(required=True, validate=validate.OneOf(EVENT_ACTIONS))
    from_status = fields.String(required=True, allow_none=True)
    to_status = fields.String(required=True)
    actor = fields.String(required=True)
    office = fields.Nested(OfficeRef, required=True, allow_none=True)
    note = fields.String(required=True)
    detail = fields.Dict(required=True)


class PhotoOut(Schema):
    url = fields.String(required=True, metadata={"format": "uri"})
    content_type = fields.String(required=True)
    size_bytes = numbers.Integer(required=True)


class TimelineEntryOut(Schema):
    """One step of a case as its reporters may see it (intake.report_timeline says what is
    public): no staff identities, no key ids."""

    at = fields.AwareDateTime(required=True)
    action = fields.String(required=True, validate=validate.OneOf(EVENT_ACTIONS))
    from_status = fields.String(required=True, allow_none=True)
    status = fields.String(
        required=True, metadata={"description": "The case's status after this step."}
    )
    by = fields.String(
        required=True,
        validate=validate.OneOf(["system", "office", "reporter"]),
        metadata={"description": "Who took the step: CityRelay, the office, or a reporter."},
    )
    office = fields.Nested(OfficeRef, required=True, allow_none=True)
    note = fields.String(
        required=True,
        metadata={
            "description": "Words written for the reporters: the question of `ask`, the note "
            "of `resolve`, `close` and `transfer`, a reporter's `answer`, `confirm` or "
            "`reopen`; empty for every other step."
        },
    )
    detail = fields.Dict(
        required=True,
        metadata={
            "description": "The step's public facts: category, method, confidence, due_at, "
            "triage_reason, closure, closure_before, hours, from_office, to_office, rework."
        },
    )
    photos = fields.List(
        fields.Nested(PhotoOut),
        required=True,
        metadata={"description": "After-photos of a `resolve`; empty for other steps."},
    )


class ReportOut(Schema):
    id = numbers.Integer(required=True)
    status = fields.String(required=True, validate=validate.OneOf(REPORT_STATUSES))
    channel = fields.String(required=True, validate=validate.OneOf(CHANNELS))
    text = fields.String(required=True)
    lang = fields.String(required=True)
    lat = numbers.Float(
        required=True,
        allow_none=True,
        metadata={
            "description": "Rounded to 3 decimals (about 100 m) unless the key is the report's "
            "reporter's, its office's or the admin's."
        },
    )
    lon = numbers.Float(
        required=True,
        allow_none=True,
        metadata={"description": "Rounded like `lat`."},
    )
    address = fields.String(
        required=True,
        metadata={
            "description": "What the reporter typed to place the report; empty unless the key "
            "is the report's reporter's, its office's or the admin's."
        },
    )
    received_at = fields.AwareDateTime(required=True)
    photos = fields.List(fields.Nested(PhotoOut), required=True)
    case_id = numbers.Integer(required=True, allow_none=True)
    category = fields.String(required=True, allow_none=True)
    category_name = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        required=True,
        allow_none=True,
        metadata={"description": "The category's name in Chinese (zh) and English (en)."},
    )
    confidence = numbers.Float(required=True, allow_none=True)
    classified_by = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(["reporter", "classifier", "none"]),
        metadata={"description": "Who chose the category: the reporter, the classifier, none."},
    )
    alternatives = fields.List(
        fields.Dict(),
        required=True,
        metadata={"description": "The classifier's next guesses: {category, confidence}."},
    )
    classifier_model = fields.String(
        required=True,
        allow_none=True,
        metadata={
            "description": "Model id of the classifier in force when the case opened "
            "(`cityrelay train-classifier` prints it)."
        },
    )
    office = fields.Nested(OfficeRef, required=True, allow_none=True)
    routing = fields.Dict(
        required=True,
        metadata={
            "description": "Why this office: rule version, polygon, rule, offices considered "
            "and an explanation."
        },
    )
    due_at = fields.AwareDateTime(required=True, allow_none=True)
    reports_in_case = numbers.Integer(
        required=True, metadata={"description": "Reports in the case ('me too' included)."}
    )
    reporters_in_case = numbers.Integer(required=True)
    events = fields.List(fields.Nested(EventOut), required=True)
    status_url = fields.String(required=True, metadata={"format": "uri"})
    closure = fields.String(
        required=True,
        allow_none=True,
        validate=validate.OneOf(CASE_CLOSURES),
        metadata={"description": "How the case was closed; null unless it is closed."},
    )
    timeline = fields.List(
        fields.Nested(TimelineEntryOut),
        required=True,
        metadata={"description": "The case's history as its reporters may see it."},
    )
    after_photos = fields.List(
        fields.Nested(PhotoOut),
        required=True,
        metadata={"description": "Photos of the latest resolution (empty after a rework)."},
    )
    allowed_actions = fields.List(
        fields.String(validate=validate.OneOf(ACTIONS)),
        required=True,
        metadata={
            "description": "What the reporter whose key is sent (`Authorization: Bearer`) may "
            "do now: `answer`, `confirm`, `reopen`; empty without a reporter key, or for a "
            "reporter with no report in the case. The report is public either way."
        },
    )
    reopen_until = fields.AwareDateTime(
        required=True,
        allow_none=True,
        metadata={"description": "Until when a closed case may be reopened; null otherwise."},
    )


# ---------- the reporter's actions on the case of a report ----------


def not_blank(value: str) -> None:
    if not value.strip():
        raise ValidationError("Must not be blank.")


def required_text(description: str) -> fields.String:
    return fields.String(
        required=True,
        validate=[validate.Length(min=1, max=MAX_NOTE_CHARS), not_blank],
        metadata={"description": description},
    )


class AnswerIn(Schema):
    class Meta:
        unknown = RAISE

    text = required_text("The answer to the office's question.")


class ConfirmIn(Schema):
    class Meta:
        unknown = RAISE

    note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_CHARS))


class ReopenIn(Schema):
    class Meta:
        unknown = RAISE

    reason = required_text("Why the case is not done.")
