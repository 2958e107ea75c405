"""Which office acts on a case: the most specific office whose jurisdiction contains the point
and that handles the category, else up the parent chain. Pure: no database, no Flask."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

OUTSIDE_JURISDICTION = "outside_jurisdiction"
NO_OFFICE_HANDLES = "no_office_handles"


@dataclass(frozen=True)
class OfficeNode:
    code: str
    kind: str
    parent: str | None
    categories: frozenset[str]
    has_jurisdiction: bool
    active: bool = True

    def handles(self, category: str) -> bool:
        return self.active and category in self.categories


@dataclass(frozen=True)
class RoutingDecision:
    office: str | None
    rule: str
    explanation: str
    considered: tuple[str, ...] = field(default=())

    @property
    def routed(self) -> bool:
        return self.office is not None


class OfficeDirectory:
    def __init__(
        self,
        offices: Iterable[OfficeNode],
        overrides: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        """``overrides`` maps (area office code, category) to the office that takes that
        category anywhere inside the area, whatever the offices there handle."""
        self.offices = {office.code: office for office in offices}
        self.overrides = dict(overrides or {})
        departments: dict[str, list[OfficeNode]] = defaultdict(list)
        for office in self.offices.values():
            # Departments without a polygon serve their parent's whole area.
            if office.kind == "department" and not office.has_jurisdiction and office.parent:
                departments[office.parent].append(office)
        self._departments = {
            parent: sorted(children, key=lambda o: o.code)
            for parent, children in departments.items()
        }

    def route(
        self, containing: Sequence[str], category: str, exclude: frozenset[str] = frozenset()
    ) -> RoutingDecision:
        """``containing``: codes of the offices whose jurisdiction covers the point, most
        specific first (as JurisdictionIndex.containing gives them). ``exclude``: offices that
        rejected the case; they are never chosen again, so a case cannot bounce back."""
        if not containing:
            return RoutingDecision(
                None, OUTSIDE_JURISDICTION, "The point lies outside every office's jurisdiction."
            )
        considered: list[str] = []
        start = containing[0]
        for code in [*self._ancestry(start), *containing[1:]]:
            if code in considered:
                continue
            considered.append(code)
            office = self.offices.get(code)
            if office is None:
                continue
            target = self.offices.get(self.overrides.get((code, category), ""))
            if target is not None and target.active and target.code not in exclude:
                return RoutingDecision(
                    target.code,
                    "override",
                    f"Inside {code}, {category} goes to {target.code} (an area override).",
                    (*considered, target.code),
                )
            if office.handles(category) and code not in exclude:
                rule = "jurisdiction" if code == start else "parent"
                why = (
                    f"{code}'s jurisdiction contains the point and it handles {category}."
                    if rule == "jurisdiction"
                    else f"No more specific office handles {category}; {code} above {start} does."
                )
                return RoutingDecision(code, rule, why, tuple(considered))
            for department in self._departments.get(code, ()):
                considered.append(department.code)
                if department.handles(category) and department.code not in exclude:
                    return RoutingDecision(
                        department.code,
                        "department",
                        f"{department.code} handles {category} across all of {code}.",
                        tuple(considered),
                    )
        return RoutingDecision(
            None,
            NO_OFFICE_HANDLES,
            f"No office containing the point, nor any above it, handles {category}.",
            tuple(considered),
        )

    def _ancestry(self, code: str) -> list[str]:
        chain: list[str] = []
        current: str | None = code
        while current is not None and current not in chain:
            chain.append(current)
            node = self.offices.get(current)
            current = node.parent if node else None
        return chain
