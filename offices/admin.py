"""Administration under /api/v1/admin: the routing rules, changed only through versioned
changes. Admin keys only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select

from models.entities import RuleVersion
from models.limits import MAX_NOTE_CHARS, MERGE_RADIUS_RANGE_M, MERGE_WINDOW_RANGE_HOURS
from models.routing_rules import current_rules, current_version
from services import rules as rule_changes
from web.auth import authenticate
from web.db import read_session, unit_of_work
from web.errors import ApiError, json_object_body

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")


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

    area = fields.String(required=True)
    category = fields.String(required=True)
    office = fields.String(required=True, allow_none=True)
    note = fields.String(load_default="", validate=validate.Length(max=MAX_NOTE_CHARS))


def _version_view(version: RuleVersion, with_rules: bool) -> dict[str, Any]:
    view: dict[str, Any] = {
        "version": version.id,
        "created_at": version.created_at.isoformat(),
        "actor": version.actor,
        "note": version.note,
    }
    if with_rules:
        view["rules"] = version.rules
    return view


@bp.get("/rules")
def rules() -> ResponseReturnValue:
    authenticate("admin")
    session = read_session()
    return {"version": current_version(session), "rules": current_rules(session)}


@bp.get("/rules/versions")
def versions() -> ResponseReturnValue:
    authenticate("admin")
    rows = read_session().scalars(select(RuleVersion).order_by(RuleVersion.id.desc())).all()
    return [_version_view(v, with_rules=False) for v in rows]


@bp.get("/rules/versions/<int:version>")
def one_version(version: int) -> ResponseReturnValue:
    authenticate("admin")
    row = read_session().get(RuleVersion, version)
    if row is None:
        raise ApiError(404, "not_found", f"No rule version {version}.")
    return _version_view(row, with_rules=True)


@bp.put("/offices/<code>/categories")
def put_office_categories(code: str) -> ResponseReturnValue:
    caller = authenticate("admin")
    data = OfficeCategoriesIn().load(json_object_body())
    with unit_of_work() as session:
        version = rule_changes.set_office_categories(
            session, code, data["categories"], f"admin-key:{caller.key_id}", data["note"]
        )
        view = _version_view(version, with_rules=True)
    return view


@bp.put("/overrides")
def put_override() -> ResponseReturnValue:
    caller = authenticate("admin")
    data = OverrideIn().load(json_object_body())
    with unit_of_work() as session:
        version = rule_changes.set_override(
            session,
            data["area"],
            data["category"],
            data["office"],
            f"admin-key:{caller.key_id}",
            data["note"],
        )
        view = _version_view(version, with_rules=True)
    return view


@bp.put("/categories/<code>/merge")
def put_merge_settings(code: str) -> ResponseReturnValue:
    """How close and how soon a new report must be to join an open case of this category."""
    authenticate("admin")
    data = MergeSettingsIn().load(json_object_body())
    with unit_of_work() as session:
        settings = rule_changes.set_merge_settings(
            session, code, data["radius_m"], data["window_hours"]
        )
    return {
        "code": settings.code,
        "radius_m": settings.radius_m,
        "window_hours": settings.window_hours,
    }
