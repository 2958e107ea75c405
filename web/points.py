"""The points policy in force: the app's settings (POINTS_*, TIMEZONE) as routing.rewards
takes them, built once when the app starts so a bad value stops the start instead of every
closing. Every door that closes cases passes it to services.casework.close."""

from __future__ import annotations

from flask import Flask, current_app

from routing.rewards import PointsPolicy
from services.rewards import POLICY_SETTINGS, policy_from_settings

_EXTENSION = "cityrelay.points_policy"


def init_app(app: Flask) -> None:
    try:
        app.extensions[_EXTENSION] = policy_from_settings(app.config)
    except (TypeError, ValueError, KeyError) as refusal:
        names = ", ".join(f"CITYRELAY_{name}" for name in POLICY_SETTINGS.values())
        raise RuntimeError(f"The points settings ({names}) are not usable: {refusal}") from None


def points_policy() -> PointsPolicy:
    policy: PointsPolicy = current_app.extensions[_EXTENSION]
    return policy
