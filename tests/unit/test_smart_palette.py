"""WCAG 2.1 AA contrast of the report's and the app's colours, read from their stylesheets: text
at least 4.5:1 on its background (1.4.3), the focus ring and the chart's lines at least 3:1 against
white (1.4.11). https://www.w3.org/TR/WCAG21/#contrast-minimum, #non-text-contrast"""

from __future__ import annotations

import re
from importlib import resources

import pytest

from fhir_migraine.report import chart

TEMPLATES = resources.files("fhir_migraine.report") / "templates"
CSS = (TEMPLATES / "month.css").read_text(encoding="utf-8") + (TEMPLATES / "app.css").read_text(encoding="utf-8")
WHITE = "#ffffff"


def luminance(colour: str) -> float:
    """Relative luminance (WCAG 2.1, definition of relative luminance)."""
    value = colour.lstrip("#")
    if len(value) == 3:
        value = "".join(c * 2 for c in value)
    channels = [int(value[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def ratio(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def declared(selector: str, prop: str) -> str:
    """The colour a rule of the stylesheets gives ``prop`` (the first colour in its value)."""
    found = re.search(re.escape(selector) + r"\s*\{[^}]*?\b" + re.escape(prop) + r":\s*[^;}]*?(#[0-9a-fA-F]{3,6})", CSS)
    assert found is not None, f"{selector} {{ {prop} }} not in the stylesheets"
    return found.group(1)


TEXT = declared("body", "color")
TEXT_ON = [
    pytest.param(TEXT, WHITE, id="body-text"),
    pytest.param(TEXT, declared(".calendar td.mild", "background"), id="mild-day"),
    pytest.param(TEXT, declared(".calendar td.moderate", "background"), id="moderate-day"),
    pytest.param(TEXT, declared(".calendar td.severe", "background"), id="severe-day"),
    pytest.param(TEXT, declared(".calendar td.unknown", "background"), id="unknown-intensity-day"),
    pytest.param(declared(".calendar td.unrecorded", "color"), "#eeeeee", id="unrecorded-day"),
    pytest.param(declared(".flag", "color"), WHITE, id="overuse-flag"),
    pytest.param(declared(".trend-table td.reached", "color"), WHITE, id="threshold-reached"),
    pytest.param(declared("a", "color"), WHITE, id="links"),
    pytest.param(declared(".skip", "color"), declared(".skip", "background"), id="skip-link"),
    pytest.param(declared(".who", "color"), WHITE, id="secondary-text"),
    pytest.param(declared(".trend figcaption", "color"), WHITE, id="chart-caption"),
    pytest.param(declared(".state-error h1", "color"), WHITE, id="error-title"),
    pytest.param(chart.TEXT, WHITE, id="chart-text"),
]


@pytest.mark.parametrize(("text", "background"), TEXT_ON)
def test_text_has_at_least_4_5_to_1(text: str, background: str) -> None:
    assert ratio(text, background) >= 4.5, f"{text} on {background}: {ratio(text, background):.2f}"


@pytest.mark.parametrize("colour", [declared("a:focus-visible, a:focus", "outline"), *(c for _, _, c in chart.SERIES),
                                    *chart.THRESHOLD_COLOURS.values()])
def test_the_focus_ring_and_the_chart_lines_have_at_least_3_to_1(colour: str) -> None:
    assert ratio(colour, WHITE) >= 3.0, f"{colour}: {ratio(colour, WHITE):.2f}"


def test_the_ratio_is_that_of_wcag() -> None:
    assert ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert ratio("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the lightest grey that passes on white
