"""Administration under /api/v1/admin: the routing rules, and each category's questions and
keywords, changed only through versioned changes. Admin keys only."""

from __future__ import annotations

from typing import Any

from flask import Blueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import select

from models.entities import CategorySettingsVersion, RuleVersion
from models.routing_rules import current_rules, current_version
from offices.schemas import (
    AttributesIn,
    CategorySettingsOut,
    CategorySettingsVersionOut,
    CategorySettingsVersionSummaryOut,
    KeywordsIn,
    MergeSettingsIn,
    MergeSettingsOut,
    OfficeCategoriesIn,
    OverrideIn,
    RuleSetOut,
    RuleVersionOut,
    RuleVersionSummaryOut,
)
from routing.attributes import Attribute, Choice, Keyword
from services import category_settings
from services import rules as rule_changes
from web.auth import authenticate
from web.db import read_session, unit_of_work
from web.errors import ApiError, json_object_body
from web.openapi import ERROR, error, operation

bp = Blueprint("admin", __name__, url_prefix="/api/v1/admin")

NOT_ADMIN = error("Not an admin key.")


def _version_view(version: RuleVersion) -> dict[str, Any]:
    return {
        "version": version.id,
        "created_at": version.created_at,
        "actor": version.actor,
        "note": version.note,
        "rules": version.rules,
    }


@bp.get("/rules")
@operation(
    summary="The routing rules in force and their version",
    responses={200: RuleSetOut, 401: ERROR, 403: NOT_ADMIN},
    security="bearer",
    tags=["admin"],
)
def rules() -> ResponseReturnValue:
    authenticate("admin")
    session = read_session()
    return RuleSetOut().dump({"version": current_version(session), "rules": current_rules(session)})


@bp.get("/rules/versions")
@operation(
    summary="Every version of the rules, newest first",
    responses={200: RuleVersionSummaryOut(many=True), 401: ERROR, 403: NOT_ADMIN},
    security="bearer",
    tags=["admin"],
)
def versions() -> ResponseReturnValue:
    authenticate("admin")
    rows = read_session().scalars(select(RuleVersion).order_by(RuleVersion.id.desc())).all()
    return RuleVersionSummaryOut(many=True).dump([_version_view(v) for v in rows])


@bp.get("/rules/versions/<id:version>")
@operation(
    summary="One version of the rules, with the rules as they were",
    responses={
        200: RuleVersionOut,
        401: ERROR,
        403: NOT_ADMIN,
        404: error("No such version."),
    },
    security="bearer",
    tags=["admin"],
)
def one_version(version: int) -> ResponseReturnValue:
    authenticate("admin")
    row = read_session().get(RuleVersion, version)
    if row is None:
        raise ApiError(404, "not_found", f"No rule version {version}.")
    return RuleVersionOut().dump(_version_view(row))


@bp.put("/offices/<code>/categories")
@operation(
    summary="Replace the categories an office handles (records a new version)",
    body=OfficeCategoriesIn,
    responses={
        200: RuleVersionOut,
        400: ERROR,
        401: ERROR,
        403: NOT_ADMIN,
        404: error("No such office."),
        422: error("Invalid fields, or unknown categories."),
    },
    security="bearer",
    tags=["admin"],
)
def put_office_categories(code: str) -> ResponseReturnValue:
    caller = authenticate("admin")
    data = OfficeCategoriesIn().load(json_object_body())
    with unit_of_work() as session:
        version = rule_changes.set_office_categories(
            session, code, data["categories"], f"admin-key:{caller.key_id}", data["note"]
        )
        view = RuleVersionOut().dump(_version_view(version))
    return view


@bp.put("/overrides")
@operation(
    summary="Inside an area, send a category to an office (office null removes it)",
    description="Records a new version of the rules.",
    body=OverrideIn,
    responses={
        200: RuleVersionOut,
        400: ERROR,
        401: ERROR,
        403: NOT_ADMIN,
        422: error(
            "Invalid fields: an unknown area, category or office, or an area without "
            "a jurisdiction."
        ),
    },
    security="bearer",
    tags=["admin"],
)
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
        view = RuleVersionOut().dump(_version_view(version))
    return view


@bp.put("/categories/<code>/merge")
@operation(
    summary="Set how close and how soon a report joins an open case of a category",
    body=MergeSettingsIn,
    responses={
        200: MergeSettingsOut,
        400: ERROR,
        401: ERROR,
        403: NOT_ADMIN,
        404: error("No such category."),
        422: ERROR,
    },
    security="bearer",
    tags=["admin"],
)
def put_merge_settings(code: str) -> ResponseReturnValue:
    """How close and how soon a new report must be to join an open case of this category."""
    authenticate("admin")
    data = MergeSettingsIn().load(json_object_body())
    with unit_of_work() as session:
        settings = rule_changes.set_merge_settings(
            session, code, data["radius_m"], data["window_hours"]
        )
    return MergeSettingsOut().dump(
        {
            "code": settings.code,
            "radius_m": settings.radius_m,
            "window_hours": settings.window_hours,
        }
    )


# ---------------------------------------------------------------- category settings

UNKNOWN_CATEGORY = error("No such category (`fields.code` names it).")


def _settings_view(settings: category_settings.CategorySettings) -> dict[str, Any]:
    return CategorySettingsOut().dump(settings)


def _settings_version_view(version: CategorySettingsVersion) -> dict[str, Any]:
    return {
        "version": version.id,
        "created_at": version.created_at,
        "actor": version.actor,
        "note": version.note,
        "category": version.category_code,
        "settings": version.settings,
    }


@bp.get("/categories/<code>/settings")
@operation(
    summary="A category's questions (Open311 attributes) and keywords, with the version in force",
    responses={200: CategorySettingsOut, 401: ERROR, 403: NOT_ADMIN, 404: UNKNOWN_CATEGORY},
    security="bearer",
    tags=["admin"],
)
def category_settings_view(code: str) -> ResponseReturnValue:
    authenticate("admin")
    return _settings_view(category_settings.settings_of(read_session(), code))


@bp.put("/categories/<code>/attributes")
@operation(
    summary="Replace the questions a category asks (records a new settings version)",
    description="Open311 service definitions and `POST requests` use them from the next request.",
    body=AttributesIn,
    responses={
        200: CategorySettingsOut,
        400: ERROR,
        401: ERROR,
        403: NOT_ADMIN,
        404: UNKNOWN_CATEGORY,
        422: error("Invalid fields, named like `attributes.1.values`; nothing is changed."),
    },
    security="bearer",
    tags=["admin"],
)
def put_category_attributes(code: str) -> ResponseReturnValue:
    caller = authenticate("admin")
    data = AttributesIn().load(json_object_body())
    attributes = [
        Attribute(
            code=item["code"],
            datatype=item["datatype"],
            required=item["required"],
            description_zh=item["description_zh"],
            description_en=item["description_en"],
            values=tuple(Choice(v["key"], v["name_zh"], v["name_en"]) for v in item["values"]),
            datatype_description=item["datatype_description"],
            minimum=item["minimum"],
            maximum=item["maximum"],
        )
        for item in data["attributes"]
    ]
    with unit_of_work() as session:
        category_settings.replace_attributes(
            session, code, attributes, f"admin-key:{caller.key_id}", data["note"]
        )
        view = _settings_view(category_settings.settings_of(session, code))
    return view


@bp.put("/categories/<code>/keywords")
@operation(
    summary="Replace the words a category is found by (records a new settings version)",
    description="Open311 `services` lists them from the next request.",
    body=KeywordsIn,
    responses={
        200: CategorySettingsOut,
        400: ERROR,
        401: ERROR,
        403: NOT_ADMIN,
        404: UNKNOWN_CATEGORY,
        422: error("Invalid fields, named like `keywords.0.word`; nothing is changed."),
    },
    security="bearer",
    tags=["admin"],
)
def put_category_keywords(code: str) -> ResponseReturnValue:
    caller = authenticate("admin")
    data = KeywordsIn().load(json_object_body())
    keywords = [Keyword(item["word"], item["lang"]) for item in data["keywords"]]
    with unit_of_work() as session:
        category_settings.replace_keywords(
            session, code, keywords, f"admin-key:{caller.key_id}", data["note"]
        )
        view = _settings_view(category_settings.settings_of(session, code))
    return view


@bp.get("/categories/versions")
@operation(
    summary="Every version of the category settings, newest first",
    responses={200: CategorySettingsVersionSummaryOut(many=True), 401: ERROR, 403: NOT_ADMIN},
    security="bearer",
    tags=["admin"],
)
def category_settings_versions() -> ResponseReturnValue:
    authenticate("admin")
    rows = read_session().scalars(
        select(CategorySettingsVersion).order_by(CategorySettingsVersion.id.desc())
    )
    return CategorySettingsVersionSummaryOut(many=True).dump(
        [_settings_version_view(v) for v in rows]
    )


@bp.get("/categories/versions/<id:version>")
@operation(
    summary="One version of the category settings, with every category's settings as they were",
    responses={
        200: CategorySettingsVersionOut,
        401: ERROR,
        403: NOT_ADMIN,
        404: error("No such version."),
    },
    security="bearer",
    tags=["admin"],
)
def one_category_settings_version(version: int) -> ResponseReturnValue:
    authenticate("admin")
    row = read_session().get(CategorySettingsVersion, version)
    if row is None:
        raise ApiError(404, "not_found", f"No category settings version {version}.")
    return CategorySettingsVersionOut().dump(_settings_version_view(row))
