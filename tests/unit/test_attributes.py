import pytest

from models.seed import taxonomy_rows
from routing.attributes import ATTRIBUTES, validate_answers


def test_attributes_belong_to_real_categories() -> None:
    codes = {row["code"] for row in taxonomy_rows()}
    assert set(ATTRIBUTES) <= codes
    for attributes in ATTRIBUTES.values():
        for attribute in attributes:
            lists = attribute.datatype in {"singlevaluelist", "multivaluelist"}
            assert bool(attribute.values) == lists


def test_valid_answers_are_cleaned() -> None:
    clean, errors = validate_answers("waterlogging", {"depth_cm": ["35"], "passable": ["no"]})
    assert errors == {}
    assert clean == {"depth_cm": 35.0, "passable": "no"}


def test_multivalue_keeps_order_without_repeats() -> None:
    clean, errors = validate_answers(
        "access_restriction", {"blocked_who": ["couriers", "food_riders", "couriers"]}
    )
    assert errors == {} and clean["blocked_who"] == ["couriers", "food_riders"]


@pytest.mark.parametrize(
    ("category", "answers", "bad"),
    [
        ("manhole_cover", {}, "cover_state"),
        ("manhole_cover", {"cover_state": ["stolen"]}, "cover_state"),
        ("manhole_cover", {"cover_state": ["missing", "broken"]}, "cover_state"),
        ("waterlogging", {"depth_cm": ["deep"]}, "depth_cm"),
        ("waterlogging", {"depth_cm": ["900"]}, "depth_cm"),
        ("bin_overflow", {"colour": ["red"]}, "colour"),
        ("noise", {"heard_at": ["last night"]}, "heard_at"),
        ("noise", {"heard_at": ["2026-11-23T22:00:00"]}, "heard_at"),
        ("illegal_parking", {"vehicle_type": ["tank"]}, "vehicle_type"),
        ("street_light", {"pole_number": ["x" * 201]}, "pole_number"),
    ],
)
def test_bad_answers_are_named(category: str, answers: dict, bad: str) -> None:
    _, errors = validate_answers(category, answers)
    assert bad in errors


def test_datetime_with_zone() -> None:
    clean, errors = validate_answers("noise", {"heard_at": ["2026-11-23T22:00:00Z"]})
    assert errors == {} and clean["heard_at"] == "2026-11-23T22:00:00+00:00"


def test_category_without_attributes_takes_none() -> None:
    assert validate_answers("other", {}) == ({}, {})
