"""The city's directory for anyone: offices with their jurisdictions, the category taxonomy, and
whether the service is up."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from sqlalchemy import text

from dashboards.schemas import CategoryOut, HealthOut, OfficeOut
from models import queries
from web.db import read_session
from web.openapi import operation

bp = Blueprint("directory", __name__, url_prefix="/api/v1")


@bp.get("/health")
@operation(
    summary="Liveness: the database answers",
    description=(
        "When the database does not answer, this (like every endpoint) answers 503 "
        "`service_unavailable` with `Retry-After`."
    ),
    responses={200: HealthOut},
    tags=["directory"],
)
def health() -> ResponseReturnValue:
    read_session().execute(text("SELECT 1"))
    return HealthOut().dump({"status": "ok"})


@bp.get("/offices")
@operation(
    summary="Offices and their jurisdictions",
    responses={200: OfficeOut(many=True)},
    tags=["directory"],
)
def list_offices() -> ResponseReturnValue:
    offices = queries.offices(read_session())
    by_id = {office.id: office.code for office in offices}
    rows = [
        {
            "code": office.code,
            "name": office.name,
            "name_en": office.name_en,
            "kind": office.kind,
            "parent": by_id.get(office.parent_id) if office.parent_id else None,
            "jurisdiction": office.jurisdiction,
            "categories": [category.code for category in office.categories],
            "active": office.active,
        }
        for office in offices
    ]
    return OfficeOut(many=True).dump(rows)


@bp.get("/categories")
@operation(
    summary="The category taxonomy (the public service codes)",
    responses={200: CategoryOut(many=True)},
    tags=["directory"],
)
def list_categories() -> ResponseReturnValue:
    rows = [
        {
            "code": c.code,
            "name_zh": c.name_zh,
            "name_en": c.name_en,
            "group_zh": c.group_zh,
            "standard_codes": c.standard_codes.split(),
            "time_limit": c.time_limit,
            "time_limit_source": c.time_limit_source,
            "urgent": c.urgent,
            "handled_by": c.handled_by,
            "merge_radius_m": c.merge_radius_m,
            "merge_window_hours": c.merge_window_hours,
        }
        for c in queries.categories(read_session())
    ]
    return CategoryOut(many=True).dump(rows)
