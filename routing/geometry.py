"""Which jurisdictions contain a point, through an STR-tree so the cost stays flat as the
city grows. Pure: GeoJSON in, office codes out."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from shapely import STRtree
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

# Smaller units are more specific: a community sits inside a street inside a district.
KIND_SPECIFICITY = {"community": 0, "street": 1, "district": 2}


class InvalidJurisdiction(ValueError):
    pass


def parse_jurisdiction(geojson: Mapping[str, Any]) -> BaseGeometry:
    """A GeoJSON Polygon or MultiPolygon as a valid shapely geometry, or InvalidJurisdiction."""
    kind = geojson.get("type") if isinstance(geojson, Mapping) else None
    if kind not in {"Polygon", "MultiPolygon"}:
        raise InvalidJurisdiction("a jurisdiction must be a GeoJSON Polygon or MultiPolygon")
    try:
        geometry = shape(geojson)
    except (ValueError, TypeError, IndexError, KeyError) as error:
        raise InvalidJurisdiction(f"unreadable {kind}: {error}") from error
    if geometry.is_empty or not geometry.is_valid:
        raise InvalidJurisdiction(f"the {kind} is empty or self-intersecting")
    return geometry


@dataclass(frozen=True)
class Jurisdiction:
    office_code: str
    kind: str
    geometry: BaseGeometry

    @property
    def sort_key(self) -> tuple[int, float, str]:
        # On a shared border two offices of one kind both contain the point; the smaller area,
        # then the code, decides, so the same point always goes to the same office.
        return (KIND_SPECIFICITY.get(self.kind, 3), self.geometry.area, self.office_code)


class JurisdictionIndex:
    def __init__(self, jurisdictions: Iterable[Jurisdiction]) -> None:
        self._items = sorted(jurisdictions, key=lambda j: j.sort_key)
        self._tree = STRtree([j.geometry for j in self._items])

    @classmethod
    def from_geojson(cls, rows: Iterable[tuple[str, str, Mapping[str, Any]]]) -> JurisdictionIndex:
        """Rows of (office code, office kind, GeoJSON geometry)."""
        return cls(Jurisdiction(code, kind, parse_jurisdiction(geo)) for code, kind, geo in rows)

    def __len__(self) -> int:
        return len(self._items)

    def containing(self, lon: float, lat: float) -> list[str]:
        """Codes of the offices whose jurisdiction covers the point, most specific first."""
        hits = self._tree.query(Point(lon, lat), predicate="covered_by")
        return [self._items[i].office_code for i in sorted(int(h) for h in hits)]
