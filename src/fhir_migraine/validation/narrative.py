"""The rules on a narrative's XHTML (``Narrative.div``): well-formed, one ``div`` root in the XHTML
namespace, only the elements and attributes narratives may use (txt-1), some non-whitespace
content (txt-2).

Sources: https://hl7.org/fhir/R4/narrative.html#xhtml ("a stripped down version of XHTML ...
only the basic html formatting elements and attributes described in chapters 7-11 (except
section 4 of chapter 9) and 15 of the HTML 4.0 standard, <a> elements (either name or href),
images and internally contained style attributes"; no head, body, scripts, forms, base, link,
frames, iframes, objects), and the lists the HL7 FHIR validator applies for those chapters.
The text is parsed with the standard library's expat, refusing any document type declaration,
entity declaration or external entity: a narrative has none, and refusing them is what keeps a
hostile one from expanding entities or reading files.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any
from xml.parsers import expat

from fhir_migraine.validation.issues import Issue
from fhir_migraine.validation.rules import issue

XHTML = "http://www.w3.org/1999/xhtml"
XML_NS = "http://www.w3.org/XML/1998/namespace"
STATUSES = frozenset({"generated", "extensions", "additional", "empty"})  # R4 narrative-status (required)

# HTML 4.0 chapters 7-11 and 15: text, lists, tables, links and images, style.
ELEMENTS = frozenset({
    "p", "br", "div", "h1", "h2", "h3", "h4", "h5", "h6", "a", "span", "b", "em", "i", "strong", "small", "big",
    "tt", "dfn", "q", "var", "abbr", "acronym", "cite", "blockquote", "hr", "address", "bdo", "kbd", "sub", "sup",
    "ul", "ol", "li", "dl", "dt", "dd", "pre", "table", "caption", "colgroup", "col", "thead", "tr", "tfoot", "tbody",
    "th", "td", "code", "samp", "img", "map", "area",
})
# Attributes any of them may carry (core, i18n, the table cell attributes) ...
ATTRIBUTES = frozenset({
    "title", "style", "class", "id", "lang", "dir", "accesskey", "tabindex",
    "span", "width", "align", "valign", "char", "charoff", "abbr", "axis", "headers", "scope", "rowspan", "colspan",
})
# ... and those only some elements may carry.
ELEMENT_ATTRIBUTES = {
    "a": frozenset({"href", "name", "charset", "type", "hreflang", "rel", "rev", "shape", "coords"}),
    "img": frozenset({"src", "alt", "longdesc", "height", "width", "usemap", "ismap", "border"}),
    "map": frozenset({"name"}),
    "area": frozenset({"shape", "coords", "href", "nohref", "alt"}),
    "table": frozenset({"summary", "width", "border", "frame", "rules", "cellspacing", "cellpadding"}),
    "blockquote": frozenset({"cite"}),
    "q": frozenset({"cite"}),
    "pre": frozenset({"space"}),
    "td": frozenset({"nowrap"}),
    "th": frozenset({"nowrap"}),
}
_LINKS = {("a", "href"), ("img", "src"), ("area", "href"), ("img", "longdesc"), ("q", "cite"), ("blockquote", "cite")}

_TXT_1 = "txt-1: The narrative SHALL contain only the basic html formatting elements and attributes"
_TXT_2 = "txt-2: The narrative SHALL have some non-whitespace content"


class _Refused(Exception):
    """A declaration a narrative never has (DOCTYPE, entities)."""


class _Reader:
    """What one parse of a div finds: problems as (rule, key, message), and whether it has content."""

    def __init__(self) -> None:
        self.problems: list[tuple[str, str | None, str]] = []
        self.depth = 0
        self.content = False
        self.root_in_xhtml = True

    def start(self, name: str, attributes: dict[str, str]) -> None:
        namespace, _, local = name.rpartition(" ")
        at = f"<{local}>"
        if self.depth == 0:
            if local != "div":
                self.problems.append(("type", None, f"the root element must be a div, not {at}"))
            if namespace != XHTML:
                said = f"namespace {namespace!r}" if namespace else "no namespace"
                self.problems.append(("type", None, f"the root div must be in the XHTML namespace {XHTML}, found {said}"))
                self.root_in_xhtml = False
        elif namespace != XHTML and self.root_in_xhtml:  # a root outside it is reported once
            self.problems.append(("type", None, f"{at} must be in the XHTML namespace {XHTML}"))
        self.depth += 1
        if local not in ELEMENTS:
            self.problems.append(("invariant", "txt-1", f"{_TXT_1}: element {at} is not allowed"))
        if local == "img":
            self.content = True
        for attribute, value in attributes.items():
            space, _, attribute_name = attribute.rpartition(" ")
            if space == XML_NS and attribute_name in ("lang", "space"):
                continue
            if space or (attribute_name not in ATTRIBUTES and attribute_name not in ELEMENT_ATTRIBUTES.get(local, ())):
                shown = f"{{{space}}}{attribute_name}" if space else attribute_name
                self.problems.append(("invariant", "txt-1", f"{_TXT_1}: attribute {shown!r} of {at} is not allowed"))
            elif (local, attribute_name) in _LINKS and value.strip().lower().startswith(("javascript:", "vbscript:")):
                self.problems.append(("invariant", "txt-1", f"{_TXT_1}: {attribute_name} of {at} may not be a script"))

    def end(self, name: str) -> None:
        self.depth -= 1

    def text(self, data: str) -> None:
        if not self.content and data.strip():
            self.content = True

    def instruction(self, target: str, data: str) -> None:
        self.problems.append(("invariant", "txt-1", f"{_TXT_1}: a processing instruction <?{target}?> is not allowed"))


def _refuse(*_: Any) -> Any:
    raise _Refused


@lru_cache(maxsize=4096)
def div_problems(div: str) -> tuple[tuple[str, str | None, str], ...]:
    """The problems of a narrative div, as (rule kind, invariant key, message)."""
    reader = _Reader()
    parser = expat.ParserCreate(namespace_separator=" ")
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.text
    parser.ProcessingInstructionHandler = reader.instruction
    try:
        parser.Parse(div, True)
    except _Refused:
        return (("type", None, "not allowed in a narrative: a document type or entity declaration"),)
    except expat.ExpatError as error:
        return (("type", None, f"not well-formed XHTML: {expat.ErrorString(error.code)} "
                               f"(line {error.lineno}, column {error.offset + 1} of the div)"),)
    if not reader.content:
        reader.problems.append(("invariant", "txt-2", _TXT_2))
    return tuple(reader.problems)


def narrative_issues(text: object, path: str) -> list[Issue]:
    """The issues of a resource's ``text`` (at ``path``) that the base structure does not find:
    its status outside the R4 value set, and the rules on its div."""
    if type(text) is not dict:
        return []
    found = []
    status = text.get("status")
    if type(status) is str and status not in STATUSES:
        found.append(issue("binding", f"{status!r} is not a narrative status (generated | extensions | additional | empty)",
                           f"{path}.status", element="Narrative.status"))
    div = text.get("div")
    if type(div) is str:
        for rule, key, message in div_problems(div):
            found.append(issue(rule, message, f"{path}.div", key=key, element="Narrative.div"))
    return found
