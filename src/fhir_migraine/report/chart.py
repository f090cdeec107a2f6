"""The trend chart of the SMART app, drawn by pygal as an inline SVG: headache, migraine and
acute-medication days per month, and the ICHD-3 8.2 thresholds as dashed lines. The page gives
the same figures as a table (the chart's text equivalent); the SVG carries no script (pygal's
tooltips are left out: the page runs no JavaScript at all).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pygal
from pygal.style import Style

from fhir_migraine.report.app_view import THRESHOLDS

#: Series colours: each at least 3:1 against the white plot (WCAG 2.1 1.4.11, non-text contrast),
#: told apart by their dashes and markers too, not by colour alone.
SERIES = (
    ("headache_days", "Headache days", "#9c4a00"),
    ("migraine_days", "Migraine days", "#a3001b"),
    ("acute_medication_days", "Acute-medication days", "#1f4e9c"),
)
THRESHOLD_COLOURS = {10: "#4d4d4d", 15: "#6b2c91"}
TEXT = "#1a1a1a"
_SCRIPT = re.compile(r"<script\b.*?</script>", re.S)


def _style() -> Style:
    colours = tuple(c for _, _, c in SERIES) + tuple(THRESHOLD_COLOURS[t] for t in THRESHOLDS)
    return Style(background="#ffffff", plot_background="#ffffff", foreground=TEXT, foreground_strong=TEXT,
                 foreground_subtle="#595959", colors=colours, font_family='"Noto Sans", "DejaVu Sans", sans-serif',
                 label_font_size=12, major_label_font_size=12, legend_font_size=12, title_font_size=14,
                 value_font_size=11, opacity="1", opacity_hover="1", stroke_opacity="1", stroke_opacity_hover="1", stroke_width="2.5",
                 stroke_width_hover="2.5",
                 # Light solid guides, so that only the thresholds are dashed.
                 guide_stroke_color="#d9d9d9", guide_stroke_dasharray="1,0", major_guide_stroke_color="#d9d9d9",
                 major_guide_stroke_dasharray="1,0")


def trend_svg(rows: Sequence[dict[str, Any]]) -> str:
    """The chart of the trend ``rows`` (``app_view.trend``) as an SVG element, without scripts."""
    top = max([THRESHOLDS[-1] + 2] + [r[key] for r in rows for key, _, _ in SERIES])
    chart = pygal.Line(js=[], disable_xml_declaration=True, style=_style(), width=760, height=340, explicit_size=False,
                       range=(0, top), include_x_axis=True, legend_at_bottom=True, legend_at_bottom_columns=3,
                       truncate_legend=-1, show_y_guides=True, dots_size=4, y_title="days in the month",
                       print_values=False, tooltip_border_radius=0)
    chart.x_labels = [r["label"] for r in rows]
    for key, name, _ in SERIES:
        # A month without entries is a gap in the line, not a month of zero days.
        chart.add(name, [r[key] if r["days_recorded"] else None for r in rows])
    for threshold in THRESHOLDS:
        chart.add(f"Overuse threshold {threshold} days", [threshold] * len(rows), show_dots=False,
                  stroke_style={"dasharray": "10, 6"})
    return _SCRIPT.sub("", chart.render(is_unicode=True))
