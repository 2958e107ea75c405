"""Administration under /api/v1/admin: the routing rules, changed only through versioned
changes. Admin keys only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue
from marshmallow import RAISE, Schema, fields, validate
from sqlalchemy import select

from intake import db
from intake.auth import bearer_key
from intake.errors import ApiError, field_error, json_object_body
from models.entities import Category, Office, RuleVersion
from models.routing_rules import current_rules, current_version, set_office_categories, set_override

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")


class OfficeCategoriesIn(Schema):
    class Meta:
        unknown = RAISE

    categories = fields.List(fields.String(), required=True)
    note = fields.String(load_default="", validate=validate.Length(max=1000))


class MergeSettingsIn(Schema):
    class Meta:
        unknown = RAISE

    radius_m = fields.Float(required=True, validate=validate.Range(min=1, max=1000))
    window_hours = fields.Float(required=True, validate=validate.Range(min=0.25, max=24 * 30))


class OverrideIn(Schema):
    class Meta:
        unknown = RAISE

    area = fields.String(required=True)
    category = fields.String(required=True)
    office = fields.String(required=True, allow_none=True)
    note = fields.String(load_default="", validate=validate.Length(max=1000))


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


def _office(code: str, field: str) -> Office:
    office = db.write_session().scalar(select(Office).where(Office.code == code))
    if office is None:
        raise field_error(
            field, f"No office with code '{code}'.", status=404 if field == "code" else 422
        )
    return office


@bp.get("/rules")
def rules() -> ResponseReturnValue:
    session = db.session()
    bearer_key(session, "admin")
    return {"version": current_version(session), "rules": current_rules(session)}


@bp.get("/rules/versions")
def versions() -> ResponseReturnValue:
    session = db.session()
    bearer_key(session, "admin")
    rows = session.scalars(select(RuleVersion).order_by(RuleVersion.id.desc())).all()
    return [_version_view(v, with_rules=False) for v in rows]


@bp.get("/rules/versions/<int:version>")
def one_version(version: int) -> ResponseReturnValue:
    session = db.session()
    bearer_key(session, "admin")
    row = session.get(RuleVersion, version)
    if row is None:
        raise ApiError(404, "not_found", f"No rule version {version}.")
    return _version_view(row, with_rules=True)


@bp.put("/offices/<code>/categories")
def put_office_categories(code: str) -> ResponseReturnValue:
    session = db.write_session()
    key = bearer_key(session, "admin")
    data = OfficeCategoriesIn().load(json_object_body())
    office = _office(code, "code")
    known = set(session.scalars(select(Category.code)))
    if unknown := [c for c in data["categories"] if c not in known]:
        raise field_error("categories", f"Unknown categories: {', '.join(unknown)}.")
    version = set_office_categories(
        session, office, data["categories"], f"admin-key:{key.id}", data["note"]
    )
    session.commit()
    return _version_view(version, with_rules=True)


@bp.put("/overrides")
def put_override() -> ResponseReturnValue:
    session = db.write_session()
    key = bearer_key(session, "admin")
    data = OverrideIn().load(json_object_body())
    area = _office(data["area"], "area")
    if area.jurisdiction is None:
        raise field_error("area", f"{area.code} has no jurisdiction to be an area.")
    category = session.get(Category, data["category"])
    if category is None:
        raise field_error("category", f"Unknown category '{data['category']}'.")
    office = _office(data["office"], "office") if data["office"] else None
    version = set_override(session, area, category, office, f"admin-key:{key.id}", data["note"])
    session.commit()
    return _version_view(version, with_rules=True)


@bp.put("/categories/<code>/merge")
def put_merge_settings(code: str) -> ResponseReturnValue:
    """How close and how soon a new report must be to join an open case of this category."""
    session = db.write_session()
    bearer_key(session, "admin")
    data = MergeSettingsIn().load(json_object_body())
    category = session.get(Category, code)
    if category is None:
        raise field_error("code", f"Unknown category '{code}'.", status=404)
    category.merge_radius_m = data["radius_m"]
    category.merge_window_hours = data["window_hours"]
    session.commit()
    return {
        "code": code,
        "radius_m": category.merge_radius_m,
        "window_hours": category.merge_window_hours,
    }
