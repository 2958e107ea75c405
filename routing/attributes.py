"""The questions a category asks (Open311 service attributes) and the checking of answers.
Pure: definitions in, cleaned answers or named errors out."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Datatype = Literal["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
MAX_STRING = 200
MAX_TEXT = 2000


@dataclass(frozen=True)
class Choice:
    key: str
    name_zh: str
    name_en: str


@dataclass(frozen=True)
class Attribute:
    code: str
    datatype: Datatype
    required: bool
    description_zh: str
    description_en: str
    values: tuple[Choice, ...] = field(default=())
    datatype_description: str = ""

    def description(self, lang: str) -> str:
        return self.description_en if lang == "en" else self.description_zh


def _choices(*items: tuple[str, str, str]) -> tuple[Choice, ...]:
    return tuple(Choice(*item) for item in items)


ATTRIBUTES: dict[str, tuple[Attribute, ...]] = {
    "manhole_cover": (
        Attribute(
            "cover_state",
            "singlevaluelist",
            True,
            "井盖情况",
            "What is wrong with the cover",
            _choices(
                ("missing", "缺失", "Missing"),
                ("broken", "破损", "Broken"),
                ("sunk", "下沉或凸起", "Sunk or raised"),
                ("noisy", "松动异响", "Loose or rattling"),
            ),
        ),
    ),
    "street_light": (
        Attribute(
            "light_state",
            "singlevaluelist",
            False,
            "路灯情况",
            "What the light does",
            _choices(
                ("off", "不亮", "Off at night"),
                ("flickering", "闪烁", "Flickering"),
                ("on_in_daytime", "白天亮着", "On in daytime"),
                ("damaged", "灯杆或灯具损坏", "Pole or lamp damaged"),
            ),
        ),
        Attribute("pole_number", "string", False, "灯杆编号", "Number on the pole"),
    ),
    "bin_overflow": (
        Attribute(
            "bin_count",
            "number",
            False,
            "满溢的垃圾桶数量",
            "How many bins overflow",
            datatype_description="a whole number from 1 to 50",
        ),
    ),
    "waterlogging": (
        Attribute(
            "depth_cm",
            "number",
            True,
            "积水深度（厘米）",
            "Water depth in centimetres",
            datatype_description="centimetres, 0 to 300",
        ),
        Attribute(
            "passable",
            "singlevaluelist",
            False,
            "能否通行",
            "Can vehicles pass",
            _choices(("yes", "能通行", "Yes"), ("no", "不能通行", "No")),
        ),
    ),
    "traffic_facility": (
        Attribute(
            "facility",
            "singlevaluelist",
            True,
            "哪种设施",
            "Which facility",
            _choices(
                ("sign", "标志牌", "Sign"),
                ("signal", "信号灯", "Signal"),
                ("marking", "标线", "Road marking"),
                ("guardrail", "护栏", "Guardrail"),
            ),
        ),
    ),
    "road_damage": (
        Attribute(
            "size",
            "singlevaluelist",
            False,
            "破损大小",
            "How large",
            _choices(
                ("small", "小于脸盆", "Smaller than a washbasin"),
                ("medium", "约一米", "About a metre"),
                ("large", "大于一米", "Larger than a metre"),
            ),
        ),
    ),
    "illegal_parking": (
        Attribute(
            "vehicle_type",
            "multivaluelist",
            False,
            "车辆类型",
            "Which vehicles",
            _choices(
                ("car", "汽车", "Car"),
                ("motorbike", "摩托车", "Motorbike"),
                ("e_bike", "电动车", "E-bike"),
                ("shared_bike", "共享单车", "Shared bike"),
            ),
        ),
    ),
    "noise": (
        Attribute(
            "heard_at",
            "datetime",
            False,
            "什么时候听到",
            "When it was heard",
            datatype_description="ISO 8601 date and time with a time zone",
        ),
    ),
    "access_restriction": (
        Attribute(
            "blocked_who",
            "multivaluelist",
            True,
            "谁被拦",
            "Who is kept out",
            _choices(
                ("couriers", "快递员", "Couriers"),
                ("food_riders", "外卖骑手", "Food-delivery riders"),
                ("drivers", "网约车司机", "Ride-hailing drivers"),
            ),
        ),
        Attribute("gate_name", "string", False, "哪个门", "Which gate"),
    ),
    "rider_need": (
        Attribute(
            "need",
            "singlevaluelist",
            True,
            "需要什么",
            "What is needed",
            _choices(
                ("charging", "充电", "Charging"),
                ("battery_swap", "换电", "Battery swap"),
                ("rest", "歇脚点", "A place to rest"),
                ("water", "饮水", "Drinking water"),
                ("toilet", "厕所", "Toilet"),
            ),
        ),
        Attribute("details", "text", False, "补充说明", "Details"),
    ),
}

NUMBER_RANGES = {"bin_count": (1, 50), "depth_cm": (0, 300)}


def attributes_for(category: str) -> tuple[Attribute, ...]:
    return ATTRIBUTES.get(category, ())


def validate_answers(
    category: str, answers: Mapping[str, Sequence[str]]
) -> tuple[dict[str, str | float | list[str]], dict[str, str]]:
    """Check raw answers (every value a list of strings, as forms deliver them) against the
    category's attributes. Returns (clean answers, errors by attribute code)."""
    definitions = {a.code: a for a in attributes_for(category)}
    clean: dict[str, str | float | list[str]] = {}
    errors: dict[str, str] = {}
    for code in answers:
        if code not in definitions:
            errors[code] = f"'{code}' is not an attribute of {category}."
    for code, attribute in definitions.items():
        raw = [v.strip() for v in answers.get(code, []) if v.strip()]
        if not raw:
            if attribute.required:
                errors[code] = f"'{code}' is required for {category}."
            continue
        problem, value = _check(attribute, raw)
        if problem:
            errors[code] = problem
        else:
            assert value is not None
            clean[code] = value
    return clean, errors


def _check(
    attribute: Attribute, raw: list[str]
) -> tuple[str | None, str | float | list[str] | None]:
    keys = {choice.key for choice in attribute.values}
    if attribute.datatype == "multivaluelist":
        unknown = [v for v in raw if v not in keys]
        if unknown:
            return (
                f"Not allowed: {', '.join(unknown)}; choose from {', '.join(sorted(keys))}.",
                None,
            )
        return None, list(dict.fromkeys(raw))
    if len(raw) > 1:
        return f"'{attribute.code}' takes one value.", None
    value = raw[0]
    if attribute.datatype == "singlevaluelist":
        if value not in keys:
            return f"'{value}' is not allowed; choose from {', '.join(sorted(keys))}.", None
        return None, value
    if attribute.datatype == "number":
        try:
            number = float(value)
        except ValueError:
            return f"'{value}' is not a number.", None
        low, high = NUMBER_RANGES.get(attribute.code, (float("-inf"), float("inf")))
        if not low <= number <= high:
            return f"{value} is outside {low:g} to {high:g}.", None
        return None, number
    if attribute.datatype == "datetime":
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return f"'{value}' is not an ISO 8601 date and time.", None
        if moment.tzinfo is None:
            return f"'{value}' needs a time zone.", None
        return None, moment.isoformat()
    limit = MAX_TEXT if attribute.datatype == "text" else MAX_STRING
    if len(value) > limit:
        return f"At most {limit} characters.", None
    return None, value


# Words people search services by (Open311 `keywords`), Chinese and English.
KEYWORDS: dict[str, tuple[str, ...]] = {
    "manhole_cover": ("井盖", "窨井", "下水道盖", "manhole", "drain cover"),
    "street_light": ("路灯", "不亮", "灯杆", "street light", "lamp"),
    "bin_overflow": ("垃圾桶", "满溢", "垃圾箱", "trash bin", "overflowing"),
    "exposed_garbage": ("垃圾", "渣土", "堆积", "dumping", "litter"),
    "green_space": ("绿地", "草坪", "毁绿", "green space", "lawn"),
    "street_tree": ("行道树", "断枝", "倒伏", "tree", "branch"),
    "waterlogging": ("积水", "内涝", "水淹", "flooding", "standing water"),
    "road_damage": ("坑洼", "路面破损", "人行道", "pothole", "pavement"),
    "traffic_facility": ("护栏", "红绿灯", "标志牌", "guardrail", "traffic signal"),
    "illegal_parking": ("乱停车", "共享单车", "违停", "illegal parking", "shared bikes"),
    "blocked_passage": ("消防通道", "盲道", "堵塞", "fire lane", "blocked path"),
    "illegal_ads": ("小广告", "乱张贴", "涂鸦", "posters", "graffiti"),
    "street_vending": ("占道经营", "摊贩", "出店经营", "street vending", "stall"),
    "construction": ("工地", "扬尘", "围挡", "construction", "dust"),
    "noise": ("噪音", "扰民", "吵", "noise", "loud"),
    "safety_hazard": ("安全隐患", "电线", "招牌", "hazard", "loose wires"),
    "access_restriction": ("小区门禁", "不让进", "骑手", "gate", "couriers blocked"),
    "rider_need": ("充电", "换电", "歇脚", "charging", "rest point"),
    "other": ("其他", "other"),
}
