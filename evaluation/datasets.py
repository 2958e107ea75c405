"""Evaluation sets for the classifier: our own held-out split, and readers for the real
labelled reports under ``../shared/data`` (see its README). The shared files are read from disk
at evaluation time and never copied into the repository; nothing here trains on them.

Every set pairs a text with a gold label in the set's own label space and says how one of our
category codes maps into that space (``label_of``). A predicted code with no counterpart maps
to ``NO_COUNTERPART`` and so always counts as a miss.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from routing.classify import load_corpus

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = PROJECT_ROOT.parent / "shared" / "data"
NO_COUNTERPART = "(no counterpart)"

NEWPORT_FILE = Path("seeclickfix_newport_en") / "newport_ri_issues_2009_2017.csv"
MULTICITY_FILE = Path("seeclickfix_multicity_en") / "seeclickfix_us_multicity_2024-08-31.csv"
TEDDYCUP_FILE = Path("teddycup2020_c_zh") / "combined_dedup.csv"


@dataclass(frozen=True)
class EvalSet:
    name: str
    description: str
    examples: tuple[tuple[str, str], ...]  # (text, gold label)
    label_of: Callable[[str], str] = field(repr=False)
    skipped: int = 0  # rows read but left out (no text, or no counterpart in our taxonomy)


def _identity(code: str) -> str:
    return code


def held_out() -> EvalSet:
    """The bundled corpus's test split, short (rider-style) reports: never used in training,
    and the split the classifier's targets are measured on."""
    return EvalSet(
        name="held-out",
        description="CityRelay rider-style test split, short reports (routing/data/corpus.csv)",
        examples=tuple(load_corpus("test", "short")),
        label_of=_identity,
    )


def held_out_long() -> EvalSet:
    """The bundled corpus's test split, long (resident-style) descriptions."""
    return EvalSet(
        name="held-out-long",
        description="CityRelay test split, long resident-style descriptions",
        examples=tuple(load_corpus("test", "long")),
        label_of=_identity,
    )


# --- SeeClickFix (English, US cities) ----------------------------------------------------------
#
# SeeClickFix categories are coarser than ours in two places, so both English sets are scored on
# groups: a report filed as "Missed Trash or Bulky Waste Collection" is right whether we call it
# an overflowing bin or piled-up garbage, and "Tree or Vegetation Issue" covers both a broken
# street tree and damaged or overgrown green space. A storm drain report is either a clogged
# drain (standing water) or a broken grate (our manhole/drain-cover category).
GROUP_OF_CODE: Mapping[str, str] = {
    "road_damage": "pothole / road damage",
    "street_light": "street light",
    "bin_overflow": "trash / garbage",
    "exposed_garbage": "trash / garbage",
    "traffic_facility": "traffic sign / marking",
    "illegal_ads": "graffiti / posters",
    "street_tree": "tree / vegetation",
    "green_space": "tree / vegetation",
    "waterlogging": "storm drain",
    "manhole_cover": "storm drain",
    "illegal_parking": "parking",
    "noise": "noise",
}

# Newport's request_type → group. Only the categories with a clear counterpart count. Left out:
# "Roadway or Sidewalk Issue" (a catch-all: debris, sidewalk, curbs, signs, plowing, potholes),
# "Other", "Snow Issue", "Recreation Facility, Sports Field or Park Issue", "Cliff Walk Issue",
# "Public Restroom Issue", "Playground Issue", "Beach Issue", "Thank a City Employee" and rows
# with no request_type.
NEWPORT_GROUPS: Mapping[str, str] = {
    "Pothole Issue": "pothole / road damage",
    "Street Light Issue": "street light",
    "Missed Trash or Bulky Waste Collection": "trash / garbage",
    "Traffic Sign/Pavement Marking Issue": "traffic sign / marking",
    "Graffiti Issue": "graffiti / posters",
    "Tree or Vegetation Issue": "tree / vegetation",
    "Storm Drain": "storm drain",
}

# The multi-city file has 255 city-specific request types; these patterns on the type's name
# pick the ones with a clear counterpart (first match wins). Anything else is left out.
MULTICITY_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), group)
    for pattern, group in (
        (r"pothole", "pothole / road damage"),
        (r"street\s*light", "street light"),
        (r"graffiti", "graffiti / posters"),
        (r"illegal dumping|unlawful depositing|missed (trash|garbage)|litter", "trash / garbage"),
        (r"\btree\b|tall grass|weeds", "tree / vegetation"),
        (r"storm drain|flooding", "storm drain"),
        (r"traffic sign|street sign|pavement marking|traffic signal", "traffic sign / marking"),
        (r"parking|abandoned vehicle", "parking"),
        (r"noise", "noise"),
    )
)


def _group_of(code: str) -> str:
    return GROUP_OF_CODE.get(code, NO_COUNTERPART)


def _read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


NEWPORT_HALVES = ("dev", "test")


def newport_half(issue_id: str) -> str:
    """Which half of the Newport set an issue belongs to: even ids are the development half,
    whose errors may be studied, odd ids the test half, which is only ever scored. Ids were
    handed out in time order across all categories, so parity splits every category evenly."""
    return NEWPORT_HALVES[int(issue_id) % 2]


def newport(data_dir: Path, half: str | None = None) -> EvalSet:
    """SeeClickFix Newport RI, all of it or one half. Only the free-text ``description`` is
    classified: ``summary`` usually repeats the category the reporter picked, which would hand
    the model the answer."""
    examples: list[tuple[str, str]] = []
    skipped = 0
    for row in _read_rows(data_dir / NEWPORT_FILE):
        group = NEWPORT_GROUPS.get(row["request_type"].strip())
        text = row["description"].strip()
        if group is None or not text or (half is not None and newport_half(row["id"]) != half):
            skipped += 1
            continue
        examples.append((text, group))
    return EvalSet(
        name="newport" if half is None else f"newport-{half}",
        description="SeeClickFix Newport RI, categories with a clear counterpart (description)"
        + ("" if half is None else f", {half} half ({'even' if half == 'dev' else 'odd'} ids)"),
        examples=tuple(examples),
        label_of=_group_of,
        skipped=skipped,
    )


def multicity_group(request_type: str) -> str | None:
    for pattern, group in MULTICITY_PATTERNS:
        if pattern.search(request_type):
            return group
    return None


def multicity(data_dir: Path) -> EvalSet:
    """SeeClickFix, about 155 US organisations on one day; description only, as for Newport."""
    examples: list[tuple[str, str]] = []
    skipped = 0
    for row in _read_rows(data_dir / MULTICITY_FILE):
        group = multicity_group(row["request_type"])
        text = row["description"].strip()
        if group is None or not text:
            skipped += 1
            continue
        examples.append((text, group))
    return EvalSet(
        name="multicity",
        description="SeeClickFix US multi-city, request types matched to our groups",
        examples=tuple(examples),
        label_of=_group_of,
        skipped=skipped,
    )


# --- Teddy Cup 2020 (Chinese provincial message board) -----------------------------------------
#
# Its labels are departments (label_l1). Each of our categories maps to the department that
# handles it in the competition's official three-level tree (taxonomy_fj1_3level.csv):
# 城乡建设 / 城市建设和市政管理 holds 环境卫生, 园林绿化, 基础设施, 城市公共设施, 城管执法 and
# 小区管理; 城乡建设 / 安全生产 / 安全隐患 and 工程质量 / 施工安全 hold hazards and building
# sites; 环境保护 / 环境污染 / 噪音污染 holds noise; 交通运输 / 建设管理 / 设施维护 holds road
# traffic facilities, and 交通运输 / 邮政管理 (快递) and 出租车管理 (网约车) hold riders' own needs.
DEPARTMENT_OF_CODE: Mapping[str, str] = {
    "manhole_cover": "城乡建设",
    "street_light": "城乡建设",
    "bin_overflow": "城乡建设",
    "exposed_garbage": "城乡建设",
    "green_space": "城乡建设",
    "street_tree": "城乡建设",
    "waterlogging": "城乡建设",
    "road_damage": "城乡建设",
    "illegal_parking": "城乡建设",
    "blocked_passage": "城乡建设",
    "illegal_ads": "城乡建设",
    "street_vending": "城乡建设",
    "construction": "城乡建设",
    "safety_hazard": "城乡建设",
    "access_restriction": "城乡建设",
    "noise": "环境保护",
    "traffic_facility": "交通运输",
    "rider_need": "交通运输",
}
# Departments our taxonomy reaches; messages labelled with any other department (education,
# health, labour, commerce) are outside what CityRelay routes and are left out of the figure.
TEDDYCUP_DEPARTMENTS = frozenset(DEPARTMENT_OF_CODE.values())


def _department_of(code: str) -> str:
    return DEPARTMENT_OF_CODE.get(code, NO_COUNTERPART)


def teddycup(data_dir: Path, *, title_only: bool = False) -> EvalSet:
    """Teddy Cup 2020 problem C messages whose department our categories reach. ``text`` is
    title and detail together (median about 240 characters); ``title_only`` classifies just the
    title, which is closer in length to a rider's note."""
    examples: list[tuple[str, str]] = []
    skipped = 0
    for row in _read_rows(data_dir / TEDDYCUP_FILE):
        label = row["label_l1"].strip()
        text = (row["title"] if title_only else row["text"]).strip()
        if label not in TEDDYCUP_DEPARTMENTS or not text:
            skipped += 1
            continue
        examples.append((text, label))
    return EvalSet(
        name="teddycup-title" if title_only else "teddycup",
        description="Teddy Cup 2020 C, department level (城乡建设/环境保护/交通运输)"
        + (", title only" if title_only else ", title + detail"),
        examples=tuple(examples),
        label_of=_department_of,
        skipped=skipped,
    )


# name → (file it needs under the data folder, reader); the held-out split needs no file.
READERS: Mapping[str, tuple[Path | None, Callable[[Path], EvalSet]]] = {
    "held-out": (None, lambda _folder: held_out()),
    "held-out-long": (None, lambda _folder: held_out_long()),
    "newport": (NEWPORT_FILE, newport),
    "newport-dev": (NEWPORT_FILE, lambda folder: newport(folder, "dev")),
    "newport-test": (NEWPORT_FILE, lambda folder: newport(folder, "test")),
    "multicity": (MULTICITY_FILE, multicity),
    "teddycup": (TEDDYCUP_FILE, teddycup),
    "teddycup-title": (TEDDYCUP_FILE, lambda folder: teddycup(folder, title_only=True)),
}
SET_NAMES = tuple(READERS)


def available(data_dir: Path) -> tuple[list[str], list[str]]:
    """(sets whose files exist under ``data_dir``, sets whose files are missing)."""
    found, missing = [], []
    for name, (relative, _reader) in READERS.items():
        (found if relative is None or (data_dir / relative).is_file() else missing).append(name)
    return found, missing


def load(name: str, data_dir: Path) -> EvalSet:
    if name not in READERS:
        raise ValueError(f"unknown evaluation set {name!r}; choose from {', '.join(SET_NAMES)}")
    return READERS[name][1](data_dir)
