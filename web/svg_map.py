"""Jurisdiction polygons and points as the coordinates of an inline SVG: no map tiles, no
script. Longitude is scaled by the cosine of the latitude, so shapes keep their proportions at
the city's latitude."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

VIEW_WIDTH = 400.0
MARGIN = 12.0


@dataclass(frozen=True)
class Area:
    key: str
    # Each ring as SVG "x,y x,y …" points.
    rings: list[str]
    # Where the area's label goes: the middle of its bounding box.
    label_at: tuple[float, float]


@dataclass(frozen=True)
class Dot:
    x: float
    y: float
    kind: str


@dataclass(frozen=True)
class MapDrawing:
    width: float
    height: float
    areas: list[Area] = field(default_factory=list)
    dots: list[Dot] = field(default_factory=list)

    @property
    def view_box(self) -> str:
        return f"0 0 {self.width:.0f} {self.height:.0f}"

    @property
    def rings(self) -> list[str]:
        return [ring for area in self.areas for ring in area.rings]


def rings_of(geometry: dict[str, Any] | None) -> list[Sequence[Sequence[float]]]:
    if not geometry:
        return []
    kind = geometry.get("type")
    coordinates = geometry.get("coordinates") or []
    if kind == "Polygon":
        return list(coordinates)
    if kind == "MultiPolygon":
        return [ring for polygon in coordinates for ring in polygon]
    return []


def draw_map(
    areas: Sequence[tuple[str, dict[str, Any] | None]],
    points: Sequence[tuple[float, float, str]] = (),
    width: float = VIEW_WIDTH,
) -> MapDrawing | None:
    """``areas`` as (key, GeoJSON geometry) and ``points`` as (lon, lat, kind), fitted into
    ``width``; None when there is nothing to draw. Points outside every area still widen the
    frame, so no case falls off the map."""
    shapes = [(key, rings_of(geometry)) for key, geometry in areas]
    corners = [(p[0], p[1]) for _, rings in shapes for ring in rings for p in ring]
    corners += [(lon, lat) for lon, lat, _ in points]
    if not corners:
        return None
    west, east = min(x for x, _ in corners), max(x for x, _ in corners)
    south, north = min(y for _, y in corners), max(y for _, y in corners)
    x_scale = math.cos(math.radians((south + north) / 2))
    span_x = max((east - west) * x_scale, 1e-4)
    span_y = max(north - south, 1e-4)
    scale = (width - 2 * MARGIN) / max(span_x, span_y)

    def project(x: float, y: float) -> tuple[float, float]:
        return (MARGIN + (x - west) * x_scale * scale, MARGIN + (north - y) * scale)

    def ring_points(ring: Iterable[Sequence[float]]) -> str:
        return " ".join("{:.1f},{:.1f}".format(*project(p[0], p[1])) for p in ring)

    drawn = []
    for key, rings in shapes:
        if not rings:
            continue
        xs = [p[0] for ring in rings for p in ring]
        ys = [p[1] for ring in rings for p in ring]
        middle = project((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
        drawn.append(Area(key=key, rings=[ring_points(r) for r in rings], label_at=middle))
    return MapDrawing(
        width=span_x * scale + 2 * MARGIN,
        height=span_y * scale + 2 * MARGIN,
        areas=drawn,
        dots=[Dot(*project(lon, lat), kind) for lon, lat, kind in points],
    )
