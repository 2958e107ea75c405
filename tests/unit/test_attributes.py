"""Checking answers against a category's questions, with the questions passed in; and the
checks a change to the questions must pass."""

from __future__ import annotations

import math

import pytest

from models.entities import ATTRIBUTE_DATATYPES
from models.seed import category_settings_defaults, taxonomy_rows
from routing.attributes import DATATYPES, Attribute, Choice, Keyword, validate_answers
from services.category_settings import attribute_from_spec, check_attributes, check_keywords
from services.errors import InvalidFields

COVER_STATE = Attribute(
    "cover_state",
    "singlevaluelist",
    True,
    "井盖情况",
    "What is wrong with the cover",
    (Choice("missing", "缺失", "Missing"), Choice("broken", "破损", "Broken")),
)
DEPTH = Attribute("depth_cm", "number", True, "积水深度", "Depth", minimum=0, maximum=300)
PASSABLE = Attribute(
    "passable",
    "singlevaluelist",
    False,
    "能否通行",
    "Can vehicles pass",
    (Choice("yes", "能通行", "Yes"), Choice("no", "不能通行", "No")),
)
BLOCKED_WHO = Attribute(
    "blocked_who",
    "multivaluelist",
    True,
    "谁被拦",
    "Who is kept out",
    (Choice("couriers", "快递员", "Couriers"), Choice("food_riders", "外卖骑手", "Riders")),
)
HEARD_AT = Attribute("heard_at", "datetime", False, "什么时候听到", "When it was heard")
POLE = Attribute("pole_number", "string", False, "灯杆编号", "Number on the pole")
DETAILS = Attribute("details", "text", False, "补充说明", "Details")
COUNT = Attribute("bin_count", "number", False, "数量", "How many")


def test_valid_answers_are_cleaned() -> None:
    clean, errors = validate_answers(
        "waterlogging", (DEPTH, PASSABLE), {"depth_cm": ["35"], "passable": ["no"]}
    )
    assert errors == {}
    assert clean == {"depth_cm": 35.0, "passable": "no"}


def test_multivalue_keeps_order_without_repeats() -> None:
    clean, errors = validate_answers(
        "access_restriction",
        (BLOCKED_WHO,),
        {"blocked_who": ["couriers", "food_riders", "couriers"]},
    )
    assert errors == {} and clean["blocked_who"] == ["couriers", "food_riders"]


@pytest.mark.parametrize(
    ("definitions", "answers", "bad"),
    [
        ((COVER_STATE,), {}, "cover_state"),
        ((COVER_STATE,), {"cover_state": ["stolen"]}, "cover_state"),
        ((COVER_STATE,), {"cover_state": ["missing", "broken"]}, "cover_state"),
        ((DEPTH,), {"depth_cm": ["deep"]}, "depth_cm"),
        ((DEPTH,), {"depth_cm": ["900"]}, "depth_cm"),
        ((DEPTH,), {"depth_cm": ["-1"]}, "depth_cm"),
        ((DEPTH,), {"depth_cm": ["nan"]}, "depth_cm"),
        ((COUNT,), {"colour": ["red"]}, "colour"),
        ((HEARD_AT,), {"heard_at": ["last night"]}, "heard_at"),
        ((HEARD_AT,), {"heard_at": ["2026-11-23T22:00:00"]}, "heard_at"),
        ((BLOCKED_WHO,), {"blocked_who": ["tank"]}, "blocked_who"),
        ((POLE,), {"pole_number": ["x" * 201]}, "pole_number"),
        ((DETAILS,), {"details": ["x" * 2001]}, "details"),
    ],
)
def test_bad_answers_are_named(
    definitions: tuple[Attribute, ...], answers: dict[str, list[str]], bad: str
) -> None:
    _, errors = validate_answers("a_category", definitions, answers)
    assert bad in errors


def test_range_comes_from_the_definition() -> None:
    deeper = Attribute("depth_cm", "number", True, "积水深度", "Depth", minimum=0, maximum=1000)
    assert validate_answers("waterlogging", (deeper,), {"depth_cm": ["900"]})[1] == {}
    assert "depth_cm" in validate_answers("waterlogging", (DEPTH,), {"depth_cm": ["900"]})[1]


def test_a_number_without_range_takes_any_finite_number() -> None:
    clean, errors = validate_answers("bin_overflow", (COUNT,), {"bin_count": ["-12.5"]})
    assert errors == {} and clean == {"bin_count": -12.5}


def test_datetime_with_zone() -> None:
    clean, errors = validate_answers("noise", (HEARD_AT,), {"heard_at": ["2026-11-23T22:00:00Z"]})
    assert errors == {} and clean["heard_at"] == "2026-11-23T22:00:00+00:00"


def test_category_without_attributes_takes_none() -> None:
    assert validate_answers("other", (), {}) == ({}, {})
    assert "depth_cm" in validate_answers("other", (), {"depth_cm": ["3"]})[1]


# ---------------------------------------------------------------- the defaults file


def test_defaults_belong_to_real_categories_and_pass_the_checks() -> None:
    defaults = category_settings_defaults()
    assert set(defaults) == {row["code"] for row in taxonomy_rows()}
    for spec in defaults.values():
        attributes = tuple(attribute_from_spec(a) for a in spec["attributes"])
        assert check_attributes(attributes) == attributes
        keywords = tuple(Keyword(k["word"], k["lang"]) for k in spec["keywords"])
        assert check_keywords(keywords) == keywords


# ---------------------------------------------------------------- checking a change


def problems_of(attributes: list[Attribute]) -> dict[str, list[str]]:
    with pytest.raises(InvalidFields) as refused:
        check_attributes(attributes)
    return refused.value.fields


def test_a_good_change_is_trimmed() -> None:
    (checked,) = check_attributes(
        [Attribute("depth_cm", "number", True, " 深度 ", "Depth ", minimum=0, maximum=300)]
    )
    assert checked.description_zh == "深度" and checked.description_en == "Depth"


@pytest.mark.parametrize(
    ("attribute", "field"),
    [
        (Attribute("Depth cm", "number", True, "深度", "Depth"), "attributes.0.code"),
        (Attribute("x" * 41, "number", True, "深度", "Depth"), "attributes.0.code"),
        (Attribute("depth", "colour", True, "深度", "Depth"), "attributes.0.datatype"),  # type: ignore[arg-type]
        (Attribute("depth", "number", True, " ", "Depth"), "attributes.0.description_zh"),
        (Attribute("depth", "number", True, "深度", "x" * 201), "attributes.0.description_en"),
        (Attribute("depth", "number", True, "深\n度", "Depth"), "attributes.0.description_zh"),
        (Attribute("state", "singlevaluelist", True, "情况", "State"), "attributes.0.values"),
        (Attribute("state", "multivaluelist", True, "情况", "State"), "attributes.0.values"),
        (
            Attribute("depth", "number", True, "深度", "Depth", (Choice("a", "甲", "A"),)),
            "attributes.0.values",
        ),
        (
            Attribute(
                "state", "singlevaluelist", True, "情况", "State", (Choice("a b", "甲", "A"),)
            ),
            "attributes.0.values.0.key",
        ),
        (
            Attribute("state", "singlevaluelist", True, "情况", "State", (Choice("a", "", "A"),)),
            "attributes.0.values.0.name_zh",
        ),
        (
            Attribute(
                "state",
                "singlevaluelist",
                True,
                "情况",
                "State",
                (Choice("a", "甲", "A"), Choice("a", "乙", "B")),
            ),
            "attributes.0.values.1.key",
        ),
        (
            Attribute("depth", "number", True, "深度", "Depth", minimum=10, maximum=5),
            "attributes.0.maximum",
        ),
        (
            Attribute("depth", "number", True, "深度", "Depth", maximum=math.inf),
            "attributes.0.maximum",
        ),
        (Attribute("when", "datetime", True, "时间", "When", minimum=0), "attributes.0.minimum"),
    ],
)
def test_each_bad_attribute_is_named(attribute: Attribute, field: str) -> None:
    assert field in problems_of([attribute])


def test_codes_are_unique_and_every_problem_is_named_at_once() -> None:
    fields = problems_of(
        [
            Attribute("depth", "number", True, "深度", "Depth"),
            Attribute("depth", "string", False, "深度", "Depth"),
            Attribute("state", "singlevaluelist", True, "情况", "State"),
        ]
    )
    assert set(fields) == {"attributes.1.code", "attributes.2.values"}


def test_too_many_attributes() -> None:
    many = [Attribute(f"a{i}", "string", False, "问", "Q") for i in range(21)]
    assert "attributes" in problems_of(many)


@pytest.mark.parametrize(
    ("keywords", "field"),
    [
        ([Keyword(" ")], "keywords.0.word"),
        ([Keyword("x" * 51)], "keywords.0.word"),
        ([Keyword("a,b")], "keywords.0.word"),
        ([Keyword("a\x00b")], "keywords.0.word"),
        ([Keyword("Flood"), Keyword("flood")], "keywords.1.word"),
        ([Keyword("积水", "chinese")], "keywords.0.lang"),
        ([Keyword(f"w{i}") for i in range(51)], "keywords"),
    ],
)
def test_each_bad_keyword_is_named(keywords: list[Keyword], field: str) -> None:
    with pytest.raises(InvalidFields) as refused:
        check_keywords(keywords)
    assert field in refused.value.fields


def test_keywords_are_trimmed_and_language_is_optional() -> None:
    assert check_keywords([Keyword(" 积水 ", "zh"), Keyword("flood")]) == (
        Keyword("积水", "zh"),
        Keyword("flood", None),
    )


def test_the_table_allows_exactly_the_datatypes_the_checks_know() -> None:
    assert ATTRIBUTE_DATATYPES == DATATYPES
