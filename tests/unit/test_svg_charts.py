"""The charts' geometry (web.svg_charts): round count scales, period labels that never touch,
bars and the rate line where their figures put them, category names wrapped to a phone's width."""

from __future__ import annotations

import pytest

from web.svg_charts import (
    CATEGORY_BAR_ROOM_PERCENT,
    CATEGORY_NAME_PX,
    CATEGORY_NAME_WIDTH_PX,
    LABEL_FONT_CHAR_PX,
    LABEL_GAP_PX,
    NARROW_CHART_PX,
    STEP_TENTHS,
    TREND_PLOT_HEIGHT,
    TREND_PLOT_TOP,
    WIDE_CHART_PX,
    count_scale,
    draw_categories,
    draw_trend,
    label_steps,
    period_label,
    text_px,
    wrap_text,
)

# The whole numbers 1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8 × 10ⁿ: the steps a scale may take.
ROUND_WHOLE_STEPS = {
    tenths * 10**power // 10
    for tenths in STEP_TENTHS
    for power in range(6)
    if tenths * 10**power % 10 == 0
}


@pytest.mark.parametrize(
    ("largest", "step", "top"),
    [
        (0, 1, 4),
        (1, 1, 4),
        (4, 1, 4),
        (5, 2, 8),
        (9, 3, 12),
        (37, 10, 40),
        (41, 12, 48),
        (100, 25, 100),
        (101, 30, 120),
        (1000, 250, 1000),
        (12345, 4000, 16000),
    ],
)
def test_a_count_scale_is_round_whole_and_holds_the_largest(
    largest: int, step: int, top: int
) -> None:
    scale = count_scale(largest)
    assert (scale.step, scale.top) == (step, top)
    assert scale.ticks == [step * i for i in range(5)]
    assert scale.top >= largest


def test_every_count_scale_up_to_ten_thousand_is_the_smallest_round_one() -> None:
    round_steps = sorted(ROUND_WHOLE_STEPS)
    for largest in range(10_001):
        scale = count_scale(largest)
        assert scale.step in round_steps and scale.top >= largest, largest
        smaller = [step for step in round_steps if step < scale.step]
        assert not smaller or smaller[-1] * scale.divisions < largest, largest


@pytest.mark.parametrize("periods", [1, 7, 13, 26, 30, 31, 92, 366])
@pytest.mark.parametrize("label_chars", [5, 7])
def test_period_labels_never_touch_and_the_wide_chart_keeps_the_narrow_one_s(
    periods: int, label_chars: int
) -> None:
    major, minor = label_steps(periods, label_chars)
    assert major % minor == 0
    label_px = label_chars * LABEL_FONT_CHAR_PX + LABEL_GAP_PX
    # the distance between two labels' middles is at least one label with its gap
    assert NARROW_CHART_PX * major / periods >= label_px
    assert WIDE_CHART_PX * minor / periods >= label_px
    # and no more labels are left out than needed: one step less would crowd them
    if major > minor:
        assert NARROW_CHART_PX * (major - minor) / periods < label_px


def test_period_labels_are_short_dates() -> None:
    assert period_label("2026-11-08", "day") == "11-08"
    assert period_label("2026-11-02", "week") == "11-02"
    assert period_label("2026-11-01", "month") == "2026-11"


def trend_rows(*figures: tuple[int, int, float | None]) -> list[dict[str, object]]:
    return [
        {"period": f"2026-11-{day:02d}", "received": received, "closed": closed, "on_time": rate}
        for day, (received, closed, rate) in enumerate(figures, start=1)
    ]


def test_the_trend_s_bars_stand_on_the_baseline_as_high_as_their_figures() -> None:
    drawing = draw_trend(trend_rows((8, 4, 50.0), (0, 0, None), (3, 2, 100.0)), "day")
    assert drawing.scale.top == 8
    assert drawing.view_box == f"0 0 3 {TREND_PLOT_HEIGHT:.0f}"
    first, empty, _ = drawing.periods
    for period in drawing.periods:
        bars = ((period.received_bar, period.received), (period.closed_bar, period.closed))
        for bar, value in bars:
            assert bar.y + bar.height == TREND_PLOT_HEIGHT
            assert bar.height == pytest.approx(TREND_PLOT_HEIGHT * value / 8)
        # both bars inside the period's own unit, received before closed
        assert period.index <= period.received_bar.x < period.closed_bar.x
        assert period.closed_bar.x + period.closed_bar.width <= period.index + 1
    assert first.received_bar.y == 0 and empty.received_bar.height == 0
    assert [p.centre_percent for p in drawing.periods] == [16.67, 50.0, 83.33]


def test_the_rate_line_joins_the_periods_that_have_a_rate() -> None:
    drawing = draw_trend(trend_rows((8, 4, 50.0), (0, 0, None), (3, 2, 100.0)), "day")
    # 50 % half-way down the plot, 100 % at its top; the period without a rate is skipped
    assert drawing.rate_line == f"0.5,{TREND_PLOT_HEIGHT / 2:g} 2.5,0"
    assert [(p.centre_percent, p.y) for p in drawing.rate_points] == [
        (16.67, TREND_PLOT_TOP + TREND_PLOT_HEIGHT / 2),
        (83.33, TREND_PLOT_TOP),
    ]
    lone = draw_trend(trend_rows((1, 1, 75.0), (0, 0, None)), "day")
    assert lone.rate_line == "" and len(lone.rate_points) == 1


def test_the_grid_lines_carry_both_axes() -> None:
    drawing = draw_trend(trend_rows((40, 10, None)), "week")
    assert [(line.count, line.rate) for line in drawing.grid] == [
        (0, 0),
        (10, 25),
        (20, 50),
        (30, 75),
        (40, 100),
    ]
    assert drawing.grid[0].y == TREND_PLOT_TOP + TREND_PLOT_HEIGHT
    assert drawing.grid[-1].y == TREND_PLOT_TOP
    assert drawing.height > drawing.label_y > drawing.grid[0].y


def test_a_month_of_days_labels_every_sixth_day_and_every_third_when_wide() -> None:
    rows = trend_rows(*[(1, 1, None)] * 30)
    drawing = draw_trend(rows, "day")
    labelled = [(p.index, p.label, p.label_minor) for p in drawing.periods if p.label]
    assert [index for index, _, _ in labelled] == list(range(0, 30, 3))
    assert [index for index, _, minor in labelled if not minor] == list(range(0, 30, 6))
    assert labelled[1] == (3, "11-04", True)


def test_an_empty_trend_draws_nothing_but_its_grid() -> None:
    drawing = draw_trend([], "day")
    assert drawing.periods == [] and drawing.rate_line == "" and drawing.rate_points == []
    assert len(drawing.grid) == 5


def test_category_bars_are_as_long_as_their_figures_with_room_for_the_number() -> None:
    drawing = draw_categories([("积水", 12, 6), ("垃圾", 3, 0)])
    water, rubbish = drawing.rows
    assert [bar.width_percent for bar in water.bars] == [CATEGORY_BAR_ROOM_PERCENT, 42.5]
    assert [bar.width_percent for bar in rubbish.bars] == [21.25, 0.0]
    assert [(bar.kind, bar.value) for bar in water.bars] == [("cases", 12), ("closed", 6)]
    # each row below the last one: its name, then its bars, nothing overlapping
    name, cases, closed = water.name_lines[-1], water.bars[0], water.bars[1]
    assert name.y <= cases.y < cases.y + cases.height <= closed.y
    assert closed.y + closed.height < rubbish.name_lines[0].y - CATEGORY_NAME_PX
    assert drawing.height >= rubbish.bars[-1].y + rubbish.bars[-1].height
    assert draw_categories([("空", 0, 0)]).rows[0].bars[0].width_percent == 0.0


def test_a_long_category_name_is_wrapped_and_its_row_grows() -> None:
    long_name = "Couriers and riders blocked from entering a residential compound"
    drawing = draw_categories([(long_name, 2, 1), ("Other", 1, 1)])
    wrapped, short = drawing.rows
    assert [line.text for line in wrapped.name_lines] == [
        "Couriers and riders blocked from",
        "entering a residential compound",
    ]
    assert wrapped.name == long_name
    assert wrapped.bars[0].y > wrapped.name_lines[1].y
    assert short.name_lines[0].y > wrapped.bars[1].y + wrapped.bars[1].height


@pytest.mark.parametrize(
    "text",
    [
        "Couriers and riders blocked from entering a residential compound",
        "暴露垃圾或积存垃圾渣土" * 4,
        "x" * 300,
        "中文 mixed with English words and 更多的中文字符在这里" * 3,
    ],
)
def test_wrapped_lines_fit_keep_every_word_and_end_in_an_ellipsis_when_cut(text: str) -> None:
    lines = wrap_text(text, CATEGORY_NAME_WIDTH_PX, CATEGORY_NAME_PX, 3)
    assert 1 <= len(lines) <= 3
    assert all(text_px(line, CATEGORY_NAME_PX) <= CATEGORY_NAME_WIDTH_PX for line in lines)
    joined = "".join(lines).replace(" ", "")
    if lines[-1].endswith("…"):
        assert text.replace(" ", "").startswith(joined[:-1])
    else:
        assert joined == text.replace(" ", "")


def test_wide_characters_count_as_one_em() -> None:
    assert text_px("积水", 12) == 24
    assert text_px("ab", 10) == pytest.approx(11)
    assert wrap_text("  ", 100, 12, 3) == []
