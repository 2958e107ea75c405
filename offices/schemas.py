"""What offices and admins send and get back under /api/v1/cases and /api/v1/admin. Output
fields marked ``required`` are always present (the OpenAPI description says so; a dump never
checks it)."""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

from models.entities import CASE_ROUTED, CASE_TRIAGE
from models.limits import MAX_NOTE_CHARS, MERGE_RADIUS_RANGE_M, MERGE_WINDOW_RANGE_HOURS

# ---------- cases ----------


class RejectIn(Schema):
    class Meta:
        unknown = RAISE

    reason = fields.String(required=True, validate=validate.Length(min=2, max=MAX_NOTE_CHARS))


class SplitIn(Schema):
    class Meta:
        unknown = RAISE

    report_id = fields.Integer(required=True, strict=True)


class CaseRouting(Schema):
    case_id = fields.Integer(required=True)
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
    case_id = fields.Integer(required=True)
    report_id = fields.Integer(required=True)
    status_url = fields.String(
        required=True, metadata={"format": "uri", "description": "Follow the report here."}
    )


# ---------- rules administration ----------


class OfficeCategoriesIn(Schema):
    class Meta:
        unknown = RAISE

    categories = fields.List(fields.String(), required=True)
    note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_CHARS))


class MergeSettingsIn(Schema):
    class Meta:
        unknown = RAISE

    radius_m = fields.Float(required=True, validate=validate.Range(*MERGE_RADIUS_RANGE_M))
    window_hours = fields.Float(required=True, validate=validate.Range(*MERGE_WINDOW_RANGE_HOURS))


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
    version = fields.Integer(
        required=True, allow_none=True, metadata={"description": "null before any version."}
    )
    rules = fields.Nested(RulesOut, required=True)


class RuleVersionSummaryOut(Schema):
    version = fields.Integer(required=True)
    created_at = fields.AwareDateTime(required=True)
    actor = fields.String(required=True)
    note = fields.String(required=True)


class RuleVersionOut(RuleVersionSummaryOut):
    rules = fields.Nested(RulesOut, required=True)


class MergeSettingsOut(Schema):
    code = fields.String(required=True)
    radius_m = fields.Float(required=True)
    window_hours = fields.Float(required=True)
