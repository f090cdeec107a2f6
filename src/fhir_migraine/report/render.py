"""A month's view (``report.month``) as HTML (Jinja2, escaped) and as PDF (WeasyPrint).

The same HTML is the report filed in the chart and the app's month page, so both always say the
same. The PDF's fonts are the system's Noto fonts (the set-up installs them), which cover the
scripts a patient may type in notes; WeasyPrint falls back across them glyph by glyph.
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

import jinja2

from fhir_migraine import __version__, terminology

#: The letter each acute class has in the calendar (its name in the legend beside it).
CLASS_MARKS = {"triptan": "T", "ergot": "E", "gepant": "G", "ditan": "D", "nsaid": "N",
               "simple-analgesic": "A", "opioid": "O", "combination-analgesic": "C"}
MAKER = f"fhir-migraine {__version__}"


@cache
def _environment() -> jinja2.Environment:
    templates = resources.files("fhir_migraine.report") / "templates"
    loader = jinja2.FunctionLoader(lambda name: (templates / name).read_text(encoding="utf-8"))
    return jinja2.Environment(loader=loader, autoescape=True, undefined=jinja2.StrictUndefined,
                              trim_blocks=True, lstrip_blocks=True)


def patient_label(patient: dict[str, Any]) -> str:
    """How the report names the patient: the reference, or the identifier's system and value."""
    if "reference" in patient:
        return str(patient["reference"])
    found = patient.get("identifier") or {}
    return f"{found.get('value', '')} ({found.get('system', '')})".strip()


def html(view: dict[str, Any], *, requests_read: bool = True) -> str:
    """The month as a stand-alone HTML page (styles inline, no scripts, nothing fetched)."""
    css = (resources.files("fhir_migraine.report") / "templates" / "month.css").read_text(encoding="utf-8")
    return _environment().get_template("month.html").render(
        view=view, css=css, patient_label=patient_label(view["patient"]), requests_read=requests_read,
        class_marks=CLASS_MARKS, class_names={k: terminology.drug_class_display(k) for k in CLASS_MARKS}, maker=MAKER)


def pdf(page: str) -> bytes:
    """The HTML page printed to PDF (A4)."""
    import weasyprint  # heavy: loaded only when a PDF is made

    return bytes(weasyprint.HTML(string=page).write_pdf())


def _text(name: str) -> str:
    return (resources.files("fhir_migraine.report") / "templates" / name).read_text(encoding="utf-8")


def app_html(view: dict[str, Any], *, trend: list[dict[str, Any]], attacks: list[dict[str, Any]],
             links: dict[str, str | None], left_out: list[str]) -> str:
    """The SMART app's month page: the report's month with the trend (chart and table), the attacks,
    the orders in full and the month links (``previous``, ``next``: None for a month to come, ``latest``)."""
    from fhir_migraine.report.app_view import THRESHOLD_NAMES, THRESHOLDS
    from fhir_migraine.report.chart import trend_svg

    return _environment().get_template("app.html").render(
        view=view, css=_text("month.css"), app_css=_text("app.css"), patient_label=patient_label(view["patient"]),
        requests_read=True, class_marks=CLASS_MARKS, class_names={k: terminology.drug_class_display(k) for k in CLASS_MARKS},
        maker=MAKER, trend=trend, chart=trend_svg(trend), thresholds=THRESHOLDS, threshold_names=THRESHOLD_NAMES,
        attacks=attacks, links=links, left_out=left_out)


def state_html(kind: str, title: str, message: str, *, status: int | None = None, problems: list[str] | None = None,
               advice: str | None = None, next_url: str | None = None, links: dict[str, str] | None = None) -> str:
    """One of the app's other pages: ``loading`` (on to ``next_url``), ``empty``, or ``error``."""
    return _environment().get_template("app_state.html").render(
        kind=kind, title=title, message=message, status=status, problems=problems or [], advice=advice,
        next_url=next_url, links=links, css=_text("month.css"), app_css=_text("app.css"))
