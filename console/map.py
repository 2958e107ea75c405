"""The case's point over its office's jurisdiction, drawn by web.svg_map."""

from __future__ import annotations

from typing import Any

from web.svg_map import MapDrawing, draw_map


def draw(
    jurisdiction: dict[str, Any] | None, lat: float | None, lon: float | None
) -> MapDrawing | None:
    """The drawing, or None when there is neither a polygon nor a point to draw."""
    points = [(lon, lat, "case")] if lat is not None and lon is not None else []
    return draw_map([("office", jurisdiction)], points)
