"""What the directory answers with. Every field is always present (``required`` says so in the
OpenAPI description; a dump never checks it)."""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from models.entities import OFFICE_KINDS
from web import numbers


class HealthOut(Schema):
    status = fields.String(required=True, validate=validate.OneOf(["ok"]))


class OfficeOut(Schema):
    code = fields.String(required=True)
    name = fields.String(required=True)
    name_en = fields.String(required=True)
    kind = fields.String(required=True, validate=validate.OneOf(OFFICE_KINDS))
    parent = fields.String(
        required=True, allow_none=True, metadata={"description": "The parent office's code."}
    )
    jurisdiction = fields.Dict(
        required=True,
        allow_none=True,
        metadata={"description": "GeoJSON Polygon or MultiPolygon; null for a department."},
    )
    categories = fields.List(
        fields.String(),
        required=True,
        metadata={"description": "Codes of the categories it handles in its jurisdiction."},
    )
    active = fields.Boolean(required=True)


class CategoryOut(Schema):
    code = fields.String(required=True)
    name_zh = fields.String(required=True)
    name_en = fields.String(required=True)
    group = fields.String(attribute="group_zh", required=True)
    standard_codes = fields.List(fields.String(), required=True)
    time_limit = fields.String(required=True, allow_none=True)
    time_limit_source = fields.String(required=True)
    urgent = fields.Boolean(required=True)
    handled_by = fields.String(required=True)
    merge_radius_m = numbers.Float(
        required=True,
        metadata={"description": "A new report this close to an open case joins it."},
    )
    merge_window_hours = numbers.Float(
        required=True,
        metadata={"description": "...if received this soon before or after the case opened."},
    )
