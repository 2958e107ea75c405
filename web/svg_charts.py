"""Bar and line charts as the coordinates of an inline SVG drawn on the server, like the map
(web.svg_map): no script, no canvas, nothing loaded.

A chart's SVG has no viewBox, so its text keeps its size at every width: places across are
fractions of the chart's width (percentages in the markup), places down are pixels. The trend's
bars and line are drawn in an inner SVG whose viewBox is one unit per period, stretched to the
chart's width (``preserveAspectRatio="none"``), so a bar keeps its place whatever the width.

Pure: numbers in, numbers out. The pages' templates turn them into markup and escape every name.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

# The count axis: this many equal steps from 0, the rate axis (0–100 %) on the same lines.
GRID_DIVISIONS = 4
# Step sizes, in tenths of a power of ten: 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 and 10.
STEP_TENTHS = (10, 12, 15, 20, 25, 30, 40, 50, 60, 80, 100)

# The trend, in pixels: room above the plot for the top line's numbers, the plot, and the row
# of period labels under it.
TREND_PLOT_TOP = 16.0
TREND_PLOT_HEIGHT = 200.0
TREND_LABEL_BASELINE = 16.0
TREND_BOTTOM = 6.0
# A period's bars take the middle of its width: received on the left, closed on the right.
BAR_INSET = 0.1
BAR_SHARE = 0.4

# Period labels are 11 px digits, about 6.5 px each, with a gap between two labels. The labels
# shown on a phone are those of every ``major`` step, for the narrowest trend chart (a 360 px
# phone's is about 250 px wide); a chart of 600 px and more shows those of every ``minor``
# step as well (dashboard.css, by a container query on the chart's frame).
LABEL_FONT_CHAR_PX = 6.5
LABEL_GAP_PX = 14.0
NARROW_CHART_PX = 240.0
WIDE_CHART_PX = 600.0

# The categories, in pixels: a row per category, its name above its two bars. A long name is
# wrapped to the narrowest category chart's width (a 360 px phone's is about 285 px), on at
# most CATEGORY_NAME_LINES lines; the title of its row and the table have it whole.
CATEGORY_NAME_PX = 12.0
CATEGORY_NAME_BASELINE = 13.0
CATEGORY_NAME_LINE_HEIGHT = 15.0
CATEGORY_NAME_LINES = 3
CATEGORY_NAME_WIDTH_PX = 270.0
CATEGORY_BAR_TOP = 18.0
CATEGORY_BAR_HEIGHT = 9.0
CATEGORY_BAR_GAP = 2.0
CATEGORY_ROW_HEIGHT = 44.0
# The longest bar takes this share of the width; the rest is room for its number.
CATEGORY_BAR_ROOM_PERCENT = 85.0
# A value's number sits this far under its bar's top (its baseline, for 11 px digits).
VALUE_BASELINE = 8.5
# Widths of a character in ems, without the font's metrics: a Chinese character (or any wide
# one) is one em, anything else is taken as 0.55 em, more than Latin text takes on average.
NARROW_CHAR_EM = 0.55
ELLIPSIS = "…"


@dataclass(frozen=True)
class Scale:
    """From 0 to ``step × divisions`` in equal whole steps."""

    step: int
    divisions: int

    @property
    def top(self) -> int:
        return self.step * self.divisions

    @property
    def ticks(self) -> list[int]:
        return [self.step * i for i in range(self.divisions + 1)]


def count_scale(largest: float, divisions: int = GRID_DIVISIONS) -> Scale:
    """The smallest round scale whose top is at least ``largest``: whole steps of 1, 1.2, 1.5,
    2, 2.5, 3, 4, 5, 6 or 8 × 10ⁿ, so every tick is a whole number (counts have no halves)."""
    needed = max(largest, 0) / divisions
    if needed <= 1:
        return Scale(1, divisions)
    power = 10 ** math.floor(math.log10(needed))
    for tenths in STEP_TENTHS:
        if (tenths * power) % 10 == 0 and tenths * power / 10 >= needed:
            return Scale(tenths * power // 10, divisions)
    return Scale(10 * power, divisions)  # 10 × power ≥ needed always; never reached


def label_steps(periods: int, label_chars: int) -> tuple[int, int]:
    """(major, minor): label every ``major``-th period on the narrowest chart and every
    ``minor``-th one on a wide chart, so that no two labels touch. ``major`` is a multiple of
    ``minor``: the wide chart's labels include the narrow one's."""
    if periods <= 0:
        return 1, 1
    label_px = label_chars * LABEL_FONT_CHAR_PX + LABEL_GAP_PX

    def fewest_periods_apart(chart_px: float) -> int:
        return max(1, math.ceil(label_px * periods / chart_px))

    minor = fewest_periods_apart(WIDE_CHART_PX)
    major = minor * math.ceil(fewest_periods_apart(NARROW_CHART_PX) / minor)
    return major, minor


def period_label(key: str, period: str) -> str:
    """A period's axis label from its ISO date: ``11-08`` for a day or a week (its Monday),
    ``2026-11`` for a month. The table under the chart has the whole dates."""
    return key[:7] if period == "month" else key[5:10]


@dataclass(frozen=True)
class Bar:
    """In the inner drawing's units: across in periods, down in pixels from the plot's top."""

    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class TrendPeriod:
    key: str
    index: int
    received: int
    closed: int
    on_time: float | None
    received_bar: Bar
    closed_bar: Bar
    # The period's middle, in percent of the chart's width.
    centre_percent: float
    # Its axis label, None where there is no room for one; a minor one shows on wide charts.
    label: str | None
    label_minor: bool


@dataclass(frozen=True)
class GridLine:
    """A line across the chart at ``y`` (pixels from the top), with the count and the rate
    (percent) it stands for."""

    y: float
    count: int
    rate: int


@dataclass(frozen=True)
class RatePoint:
    centre_percent: float
    y: float


@dataclass(frozen=True)
class TrendDrawing:
    height: float
    plot_top: float
    plot_height: float
    label_y: float
    periods: list[TrendPeriod]
    grid: list[GridLine]
    scale: Scale
    # The on-time rate's polyline in the inner drawing's units ("x,y x,y"); periods without a
    # rate (nothing due) are left out, the line joining their neighbours.
    rate_line: str
    rate_points: list[RatePoint]

    @property
    def view_box(self) -> str:
        """The inner drawing's: one unit across per period, pixels down."""
        return f"0 0 {len(self.periods)} {self.plot_height:.0f}"


def _rounded(value: float) -> float:
    return round(value, 2)


def draw_trend(rows: Sequence[Mapping[str, Any]], period: str) -> TrendDrawing:
    """Received and closed bars per period on a count axis, and the on-time closure rate as a
    line on a 0–100 % axis that shares the count axis' grid lines. ``rows`` are the trend's, in
    order: ``period`` (ISO date), ``received``, ``closed`` and ``on_time`` (percent or None)."""
    count = len(rows)
    scale = count_scale(max((max(r["received"], r["closed"]) for r in rows), default=0))
    plot_height = TREND_PLOT_HEIGHT

    def down(value: float, top: float) -> float:
        """Pixels from the plot's top to ``value`` on an axis from 0 to ``top``."""
        return plot_height * (1 - min(max(value, 0), top) / top)

    label_chars = len(period_label(rows[0]["period"], period)) if rows else 0
    major, minor = label_steps(count, label_chars)
    drawn = []
    line = []
    points = []
    for index, row in enumerate(rows):
        received, closed, on_time = row["received"], row["closed"], row["on_time"]
        received_top = down(received, scale.top)
        closed_top = down(closed, scale.top)
        centre = _rounded((index + 0.5) / count * 100)
        labelled = index % minor == 0
        drawn.append(
            TrendPeriod(
                key=row["period"],
                index=index,
                received=received,
                closed=closed,
                on_time=on_time,
                received_bar=Bar(
                    x=_rounded(index + BAR_INSET),
                    y=_rounded(received_top),
                    width=BAR_SHARE,
                    height=_rounded(plot_height - received_top),
                ),
                closed_bar=Bar(
                    x=_rounded(index + BAR_INSET + BAR_SHARE),
                    y=_rounded(closed_top),
                    width=BAR_SHARE,
                    height=_rounded(plot_height - closed_top),
                ),
                centre_percent=centre,
                label=period_label(row["period"], period) if labelled else None,
                label_minor=labelled and index % major != 0,
            )
        )
        if on_time is not None:
            y = _rounded(down(on_time, 100))
            line.append(f"{index + 0.5:g},{y:g}")
            points.append(RatePoint(centre, _rounded(TREND_PLOT_TOP + y)))
    grid = [
        GridLine(
            y=_rounded(TREND_PLOT_TOP + down(tick, scale.top)),
            count=tick,
            rate=100 * i // scale.divisions,
        )
        for i, tick in enumerate(scale.ticks)
    ]
    label_y = TREND_PLOT_TOP + plot_height + TREND_LABEL_BASELINE
    return TrendDrawing(
        height=label_y + TREND_BOTTOM,
        plot_top=TREND_PLOT_TOP,
        plot_height=plot_height,
        label_y=label_y,
        periods=drawn,
        grid=grid,
        scale=scale,
        rate_line=" ".join(line) if len(line) > 1 else "",
        rate_points=points,
    )


def text_px(text: str, font_px: float) -> float:
    """About how wide ``text`` is in a font of ``font_px``: never much less than it is."""
    return sum(
        font_px if unicodedata.east_asian_width(char) in "WF" else font_px * NARROW_CHAR_EM
        for char in text
    )


def wrap_text(text: str, width_px: float, font_px: float, max_lines: int) -> list[str]:
    """``text`` on lines no wider than ``width_px``: broken between words, or between
    characters within a word too long for a line (Chinese has no spaces); past ``max_lines``
    the last line ends in an ellipsis."""
    pieces: list[str] = []
    for word in re.findall(r"\S+\s*", text.strip()):
        if text_px(word.rstrip(), font_px) <= width_px:
            pieces.append(word)
        else:
            pieces.extend(word)
    lines: list[str] = []
    line = ""
    for piece in pieces:
        if line and text_px((line + piece).rstrip(), font_px) > width_px:
            lines.append(line.rstrip())
            line = ""
        line += piece
    if line.strip():
        lines.append(line.rstrip())
    if len(lines) <= max_lines:
        return lines
    last = lines[max_lines - 1]
    while last and text_px(last + ELLIPSIS, font_px) > width_px:
        last = last[:-1]
    return [*lines[: max_lines - 1], last.rstrip() + ELLIPSIS]


@dataclass(frozen=True)
class CategoryBar:
    kind: str
    value: int
    y: float
    height: float
    # The bar's length from the left edge, in percent of the chart's width; its number
    # follows it.
    width_percent: float
    value_y: float


@dataclass(frozen=True)
class NameLine:
    y: float
    text: str


@dataclass(frozen=True)
class CategoryRow:
    name: str
    cases: int
    closed: int
    name_lines: list[NameLine]
    bars: list[CategoryBar]


@dataclass(frozen=True)
class CategoryDrawing:
    height: float
    rows: list[CategoryRow]


def draw_categories(rows: Sequence[tuple[str, int, int]]) -> CategoryDrawing:
    """A row per (name, cases, closed), in the order given: the name (wrapped), then a bar for
    the cases and one for the closed, the longest bar of all at CATEGORY_BAR_ROOM_PERCENT of
    the width."""
    largest = max((max(cases, closed) for _, cases, closed in rows), default=0)

    def length(value: int) -> float:
        return _rounded(CATEGORY_BAR_ROOM_PERCENT * value / largest) if largest else 0.0

    drawn = []
    top = 0.0
    for name, cases, closed in rows:
        wrapped = wrap_text(name, CATEGORY_NAME_WIDTH_PX, CATEGORY_NAME_PX, CATEGORY_NAME_LINES)
        lines = wrapped or [""]
        below_name = top + (len(lines) - 1) * CATEGORY_NAME_LINE_HEIGHT
        bars = []
        for position, (kind, value) in enumerate((("cases", cases), ("closed", closed))):
            y = below_name + CATEGORY_BAR_TOP + position * (CATEGORY_BAR_HEIGHT + CATEGORY_BAR_GAP)
            bars.append(
                CategoryBar(
                    kind=kind,
                    value=value,
                    y=y,
                    height=CATEGORY_BAR_HEIGHT,
                    width_percent=length(value),
                    value_y=y + VALUE_BASELINE,
                )
            )
        drawn.append(
            CategoryRow(
                name=name,
                cases=cases,
                closed=closed,
                name_lines=[
                    NameLine(top + CATEGORY_NAME_BASELINE + i * CATEGORY_NAME_LINE_HEIGHT, line)
                    for i, line in enumerate(lines)
                ],
                bars=bars,
            )
        )
        top = below_name + CATEGORY_ROW_HEIGHT
    return CategoryDrawing(height=top, rows=drawn)
