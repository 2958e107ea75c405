"""The reporters' "still fixed?" answer under /api/v1: a reporter who filed a report near a case
closed as fixed says whether the fix holds (services.rechecks)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, current_app, url_for
from flask.typing import ResponseReturnValue
from sqlalchemy.orm import Session

from intake.recheck_schemas import RecheckAnswerOut, RecheckIn
from models.entities import Report
from services import rechecks
from web.auth import authenticate
from web.db import unit_of_work
from web.errors import ApiError, json_object_body
from web.openapi import ERROR, error, operation
from web.rate_limits import RATE_LIMITED, bearer_token, rate_limited

bp = Blueprint("rechecks", __name__, url_prefix="/api/v1")


def recheck_radius_m() -> float:
    return float(current_app.config.get("RECHECK_RADIUS_M", rechecks.DEFAULT_RADIUS_M))


def recheck_window() -> timedelta:
    days = current_app.config.get("RECHECK_WINDOW_DAYS", rechecks.DEFAULT_WINDOW.days)
    return timedelta(days=float(days))


def offers_body(session: Session, report: Report) -> list[dict[str, Any]]:
    """The "still fixed?" offers of a filed report's answer (ReportAccepted dumps them)."""
    offers = rechecks.offers_for_report(
        session, report, radius_m=recheck_radius_m(), window=recheck_window()
    )
    return [
        {
            "case_id": offer.case_id,
            "category": offer.category,
            "closed_at": offer.closed_at,
            "distance_m": offer.distance_m,
            "url": url_for("rechecks.recheck_case", case_id=offer.case_id, _external=True),
        }
        for offer in offers
    ]


@bp.post("/cases/<id:case_id>/recheck")
@rate_limited("reporter_actions", bearer_token)
@operation(
    summary='Say whether a fix holds ("still fixed?")',
    description=(
        "A reporter key that filed a report within the recheck radius (100 m by default) of the "
        "case in the window after it was closed as `fixed` (14 days by default): the answer of "
        "`POST /api/v1/reports` offers this for every such case. One answer per reporter and "
        "closing. The second different reporter's `still_fixed: false` about the same closing "
        "sends the case back to its office as a rework (`in_progress`, closure cleared)."
    ),
    body=RecheckIn,
    body_example={"still_fixed": False},
    responses={
        200: RecheckAnswerOut,
        400: error("The body is not a JSON object, or `still_fixed` is not true or false."),
        401: ERROR,
        403: error(
            "Not a reporter key, or no report of this reporter near the case since it was "
            "closed, within the window (`recheck_not_offered`)."
        ),
        404: error("No such case."),
        422: error("A text of the body holds a control character (named in `fields`)."),
        409: error(
            "The case is not closed (`illegal_transition`), closed other than fixed "
            "(`not_fixed`), closed longer than the window ago (`recheck_window_passed`), this "
            "reporter already answered about this closing (`already_rechecked`), or another "
            "action changed the case first (`case_changed`). `status` and `allowed_actions` say "
            "what the case is now and what the reporter may do."
        ),
        429: RATE_LIMITED,
    },
    security="bearer",
    tags=["reports"],
)
def recheck_case(case_id: int) -> ResponseReturnValue:
    caller = authenticate("reporter")
    still_fixed = _still_fixed(json_object_body())
    with unit_of_work() as session:
        result = rechecks.recheck(
            session,
            case_id,
            caller,
            still_fixed,
            radius_m=recheck_radius_m(),
            window=recheck_window(),
        )
    state = result.state
    body = {
        "case_id": state.case_id,
        "status": state.status,
        "closure": state.closure,
        "office": state.office,
        "allowed_actions": state.allowed_actions,
        "due_at": state.due_at,
        "rechecks": {
            "still_fixed": result.counts.still_fixed,
            "not_fixed": result.counts.not_fixed,
        },
        "reopened": result.reopened,
    }
    return RecheckAnswerOut().dump(body)


def _still_fixed(body: dict[str, Any]) -> bool:
    """``still_fixed`` must be JSON true or false (not 1, "yes" or null); nothing else may come."""
    unknown = sorted(name for name in body if name != "still_fixed")
    if unknown:
        raise ApiError(
            400,
            "bad_request",
            f"Unknown fields: {', '.join(unknown)}; send only still_fixed.",
            {name: ["Unknown field."] for name in unknown},
        )
    value = body.get("still_fixed")
    if not isinstance(value, bool):
        raise ApiError(
            400,
            "bad_request",
            "still_fixed must be true or false.",
            {"still_fixed": ["Missing or not a boolean: send true or false."]},
        )
    return value
