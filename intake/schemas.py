"""marshmallow schemas for what the API takes in and gives out."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from models.limits import (
    MAX_ADDRESS_CHARS,
    MAX_CATEGORY_CODE_CHARS,
    MAX_DISPLAY_NAME_CHARS,
    MAX_PLATFORM_CHARS,
    MAX_TEXT_CHARS,
    OCCUPATIONS,
)
from services.errors import InvalidField, InvalidFields
from services.locations import check_location

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

    text = fields.String(load_default="", validate=validate.Length(max=MAX_TEXT_CHARS))
    lat = fields.Float(load_default=None, allow_nan=False, validate=validate.Range(-90, 90))
    lon = fields.Float(load_default=None, allow_nan=False, validate=validate.Range(-180, 180))
    category = fields.String(
        load_default=None, allow_none=True, validate=validate.Length(max=MAX_CATEGORY_CODE_CHARS)
    )
    address = fields.String(load_default="", validate=validate.Length(max=MAX_ADDRESS_CHARS))
    lang = LanguageField(load_default=None, allow_none=True)

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
    id = fields.Integer()
    display_name = fields.String()
    occupation = fields.String()
    platform = fields.String()
    key = fields.String()


class ReportAccepted(Schema):
    id = fields.Integer()
    status = fields.String()
    status_url = fields.String()


class OfficeRef(Schema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()


class EventOut(Schema):
    at = fields.AwareDateTime()
    action = fields.String()
    from_status = fields.String(allow_none=True)
    to_status = fields.String()
    actor = fields.String()
    office = fields.Nested(OfficeRef, allow_none=True)
    note = fields.String()
    detail = fields.Dict()


class PhotoOut(Schema):
    url = fields.String()
    content_type = fields.String()
    size_bytes = fields.Integer()


class ReportOut(Schema):
    id = fields.Integer()
    status = fields.String()
    channel = fields.String()
    text = fields.String()
    lang = fields.String()
    lat = fields.Float(allow_none=True)
    lon = fields.Float(allow_none=True)
    address = fields.String()
    received_at = fields.AwareDateTime()
    photos = fields.List(fields.Nested(PhotoOut))
    case_id = fields.Integer(allow_none=True)
    category = fields.String(allow_none=True)
    category_name = fields.Dict(allow_none=True)
    confidence = fields.Float(allow_none=True)
    classified_by = fields.String(allow_none=True)
    alternatives = fields.List(fields.Dict())
    classifier_model = fields.String(allow_none=True)
    office = fields.Nested(OfficeRef, allow_none=True)
    routing = fields.Dict()
    due_at = fields.AwareDateTime(allow_none=True)
    reports_in_case = fields.Integer()
    reporters_in_case = fields.Integer()
    events = fields.List(fields.Nested(EventOut))
    status_url = fields.String()
