"""The validator's narrative checks: the status value set, a well-formed XHTML div root in the
XHTML namespace, txt-1 (only the elements and attributes narratives allow) and txt-2 (some
non-whitespace content), each reported at the narrative with its rule."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.validation import default_validator

ROOT = Path(__file__).resolve().parents[2]
NS = 'xmlns="http://www.w3.org/1999/xhtml"'


def _day() -> dict[str, Any]:
    bundle = json.loads((ROOT / "examples" / "diary" / "month.bundle.json").read_text(encoding="utf-8"))
    return copy.deepcopy(bundle["entry"][0]["resource"])


def _errors(resource: dict[str, Any]) -> list[tuple[str, str, str | None, str]]:
    return [(i.expression, i.kind, i.key, i.message) for i in default_validator().issues(resource) if i.severity == "error"]


BAD_DIVS = [
    ("malformed", f"<div {NS}><p>unclosed</div>", "type", None, "not well-formed XHTML"),
    ("not-xml", "headache day", "type", None, "not well-formed XHTML"),
    ("wrong-namespace", '<div xmlns="http://example.org/html"><p>x</p></div>', "type", None, "XHTML namespace"),
    ("no-namespace", "<div><p>x</p></div>", "type", None, "XHTML namespace"),
    ("root-not-div", f"<p {NS}>x</p>", "type", None, "root element must be a div"),
    ("script", f"<div {NS}><p>x</p><script>alert(1)</script></div>", "invariant", "txt-1", "element <script>"),
    ("form", f"<div {NS}><form><p>x</p></form></div>", "invariant", "txt-1", "element <form>"),
    ("style-element", f"<div {NS}><style>p {{}}</style><p>x</p></div>", "invariant", "txt-1", "element <style>"),
    ("link", f'<div {NS}><link href="a.css"/><p>x</p></div>', "invariant", "txt-1", "element <link>"),
    ("iframe", f'<div {NS}><iframe src="x"/><p>x</p></div>', "invariant", "txt-1", "element <iframe>"),
    ("onclick", f'<div {NS}><p onclick="steal()">x</p></div>', "invariant", "txt-1", "attribute 'onclick' of <p>"),
    ("javascript-href", f'<div {NS}><a href="javascript:steal()">x</a></div>', "invariant", "txt-1", "href of <a>"),
    ("empty", f"<div {NS}></div>", "invariant", "txt-2", "non-whitespace content"),
    ("whitespace-only", f"<div {NS}> <p>\n\t</p> </div>", "invariant", "txt-2", "non-whitespace content"),
    ("entity-declaration", f'<!DOCTYPE div [<!ENTITY a "aaaa">]><div {NS}>&a;</div>', "type", None, "entity declaration"),
    ("undefined-entity", f"<div {NS}>&nbsp;x</div>", "type", None, "not well-formed XHTML"),
]


@pytest.mark.parametrize(("div", "kind", "key", "said"), [case[1:] for case in BAD_DIVS], ids=[case[0] for case in BAD_DIVS])
def test_a_bad_narrative_div_is_refused_at_the_div(div: str, kind: str, key: str | None, said: str) -> None:
    day = _day()
    day["text"]["div"] = div
    errors = _errors(day)
    assert any(at == "Observation.text.div" and k == kind and found_key == key and said in message
               for at, k, found_key, message in errors), errors


def test_a_malformed_div_says_where_in_the_div() -> None:
    day = _day()
    day["text"]["div"] = f"<div {NS}>\n<p>x</b>\n</div>"
    [(_, _, _, message)] = _errors(day)
    assert "line 2, column" in message


@pytest.mark.parametrize("status", ["generated", "extensions", "additional", "empty"])
def test_each_narrative_status_of_r4_is_accepted(status: str) -> None:
    day = _day()
    day["text"]["status"] = status
    assert _errors(day) == []


def test_a_status_outside_the_value_set_is_refused() -> None:
    day = _day()
    day["text"]["status"] = "automatic"
    assert [(at, kind) for at, kind, _, _ in _errors(day)] == [("Observation.text.status", "binding")]


def test_a_rich_allowed_narrative_passes() -> None:
    day = _day()
    day["text"]["div"] = (
        f'<div {NS} xml:lang="en"><h3 class="t">Day</h3><p style="color: red">a &amp; b <b>c</b> <a href="#x">d</a></p>'
        '<table border="1"><tr><th scope="col">x</th></tr><tr><td colspan="1">y</td></tr></table>'
        '<ul><li>z</li></ul><img src="data:image/png;base64,AA==" alt="pic"/><!-- comment --></div>')
    assert _errors(day) == []


def test_a_contained_resource_narrative_is_checked_at_its_place() -> None:
    bundle = json.loads((ROOT / "examples" / "bundles" / "valproate-weight-based.bundle.json").read_text(encoding="utf-8"))
    request = bundle["entry"][0]["resource"]
    request["contained"][1]["text"]["div"] = f"<div {NS}><script>x</script>kg</div>"
    assert any(at == "MedicationRequest.contained[1].text.div" and key == "txt-1" for at, _, key, _ in _errors(request))


def test_a_narrative_in_a_bundle_is_located_in_its_entry() -> None:
    bundle = json.loads((ROOT / "examples" / "diary" / "month.bundle.json").read_text(encoding="utf-8"))
    bundle["entry"][2]["resource"]["text"]["div"] = f"<div {NS}/>"
    assert any(at == "Bundle.entry[2].resource.text.div" and key == "txt-2" for at, _, key, _ in _errors(bundle))
