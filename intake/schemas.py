"""marshmallow schemas for what the API takes in and gives out."""

from __future__ import annotations

from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

MAX_TEXT_CHARS = 4000
MAX_ADDRESS_CHARS = 500

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
    category = fields.String(load_default=None, allow_none=True, validate=validate.Length(max=40))
    address = fields.String(load_default="", validate=validate.Length(max=MAX_ADDRESS_CHARS))
    lang = LanguageField(load_default=None, allow_none=True)

    @validates_schema
    def _a_location(self, data: dict[str, Any], **_: Any) -> None:
        check_location(data.get("lat"), data.get("lon"), data.get("address", ""))


def check_location(lat: float | None, lon: float | None, address: str) -> None:
    """Coordinates, or at least an address or landmark a person can place."""
    if lat is None and lon is None:
        if not address.strip():
            hint = "Give lat and lon, or an address or landmark."
            raise ValidationError({"lat": [hint], "lon": [hint], "address": [hint]})
        return
    if lat is None or lon is None:
        missing, given = ("lat", "lon") if lat is None else ("lon", "lat")
        raise ValidationError(f"Give {missing} together with {given}.", missing)
    # (0, 0) is what a phone sends when it has no fix; no city is there.
    if lat == 0 and lon == 0:
        raise ValidationError("0,0 is not a real location; the device had no position fix.", "lat")


class ReporterIn(Schema):
    class Meta:
        unknown = RAISE

    display_name = fields.String(load_default="", validate=validate.Length(max=100))
    occupation = fields.String(
        load_default="rider", validate=validate.OneOf(["rider", "courier", "driver", "citizen"])
    )
    platform = fields.String(load_default="", validate=validate.Length(max=100))


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
    office = fields.Nested(OfficeRef, allow_none=True)
    routing = fields.Dict()
    due_at = fields.AwareDateTime(allow_none=True)
    reports_in_case = fields.Integer()
    reporters_in_case = fields.Integer()
    events = fields.List(fields.Nested(EventOut))
    status_url = fields.String()


class OfficeOut(Schema):
    code = fields.String()
    name = fields.String()
    name_en = fields.String()
    kind = fields.String()
    parent = fields.String(allow_none=True)
    jurisdiction = fields.Dict(allow_none=True)
    categories = fields.List(fields.String())
    active = fields.Boolean()


class CategoryOut(Schema):
    code = fields.String()
    name_zh = fields.String()
    name_en = fields.String()
    group = fields.String(attribute="group_zh")
    standard_codes = fields.List(fields.String())
    time_limit = fields.String(allow_none=True)
    time_limit_source = fields.String()
    urgent = fields.Boolean()
    handled_by = fields.String()
    merge_radius_m = fields.Float()
    merge_window_hours = fields.Float()
