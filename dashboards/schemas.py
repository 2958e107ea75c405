"""What the directory answers with."""

from __future__ import annotations

from marshmallow import Schema, fields


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
