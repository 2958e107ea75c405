"""The case's point over its office's jurisdiction, as the coordinates of an inline SVG: no
map tiles, no script. Longitude is scaled by the cosine of the latitude, so the shape keeps
its proportions at Shanghai's latitude."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

VIEW_WIDTH = 400.0
MARGIN = 12.0


@dataclass(frozen=True)
class MapDrawing:
    width: float
    height: float
    # Each ring as SVG "x,y x,y …" points.
    rings: list[str]
    point: tuple[float, float] | None

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width:.0f} {self.height:.0f}"


def _rings(geometry: dict[str, Any] | None) -> list[Sequence[Sequence[float]]]:
    if not geometry:
        return []
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates") or []
    if kind == "Polygon":
        return list(coordinates)
    if kind == "MultiPolygon":
        return [ring for polygon in coordinates for ring in polygon]
    return []


def draw(
    jurisdiction: dict[str, Any] | None, lat: float | None, lon: float | None
) -> MapDrawing | None:
    """The drawing, or None when there is neither a polygon nor a point to draw."""
    rings = _rings(jurisdiction)
    point = (lon, lat) if lat is not None and lon is not None else None
    corners: list[tuple[float, float]] = [(x, y) for ring in rings for x, y, *_ in ring]
    if point is not None:
        corners.append(point)
    if not corners:
        return None
    west, east = min(x for x, _ in corners), max(x for x, _ in corners)
    south, north = min(y for _, y in corners), max(y for _, y in corners)
    x_scale = math.cos(math.radians((south + north) / 2))
    span_x = max((east - west) * x_scale, 1e-4)
    span_y = max(north - south, 1e-4)
    scale = (VIEW_WIDTH - 2 * MARGIN) / max(span_x, span_y)
    width = span_x * scale + 2 * MARGIN
    height = span_y * scale + 2 * MARGIN

    def project(x: float, y: float) -> tuple[float, float]:
        return (MARGIN + (x - west) * x_scale * scale, MARGIN + (north - y) * scale)

    def points(ring: Iterable[Sequence[float]]) -> str:
        return " ".join("{:.1f},{:.1f}".format(*project(p[0], p[1])) for p in ring)

    return MapDrawing(
        width=width,
        height=height,
        rings=[points(ring) for ring in rings],
        point=project(*point) if point is not None else None,
    )
