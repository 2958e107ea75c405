"""The points policy in force: the app's settings (POINTS_*, TIMEZONE) as routing.rewards
takes them. Every door that closes cases passes it to services.casework.close."""

from __future__ import annotations

from flask import current_app

from routing.rewards import PointsPolicy
from services.rewards import policy_from_settings


def points_policy() -> PointsPolicy:
    return policy_from_settings(current_app.config)
