"""The validation engine and HAPI FHIR's validator on the same corpus (tests/validation_corpus.py).

The package's CodeSystems, ValueSets and StructureDefinitions are stored on the local HAPI server
(PUT, so a rerun changes nothing). Every case is then validated twice: by HAPI,
``POST /fhir/<Type>/$validate?profile=<canonical>`` (a Bundle at ``/fhir/Bundle/$validate`` with
no profile, its entries checked against the profiles they declare), and by the engine,
``validate(resource, profile=canonical)``. Per case:

* both give the same verdict: invalid when an ``error`` or ``fatal`` issue is present;
* for an invalid case, the engine's first error is at an element one of HAPI's errors is at;
* every HAPI error is at an element the engine reports, and every engine error at an element
  HAPI reports, so neither finds a problem the other misses.

``same_element`` decides "at the same element" (its docstring says what it normalizes). Where
HAPI answers differently for a known reason, the case is in ``KNOWN_DIFFERENCES`` with the reason
and the answer HAPI gives instead; it is run like every other case and the test asserts that
documented answer, so a change on either side fails. ``test_summary`` prints the counts (run with
``-s`` to see them).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from fhir_migraine.validation import default_validator
from tests.validation_corpus import PROFILE_IDS, ROOT, RULE_KINDS, Case, cases

pytestmark = pytest.mark.ehr

CASES = cases()
Issue = dict[str, Any]


@dataclass(frozen=True)
class Difference:
    """What HAPI answers instead of agreeing, and why.

    ``hapi_valid``: HAPI finds no error where the engine finds one. Otherwise both find the case
    invalid at the same element, and ``hapi_only`` is the rule (a text in the diagnostics) of the
    HAPI errors the engine has no counterpart for. ``hapi_warns`` is the text of a HAPI warning at
    the engine's error element, when HAPI reports the problem as a warning only.
    """

    reason: str
    hapi_valid: bool
    hapi_only: str = ""
    hapi_warns: str = ""


_TARGET_TYPES = ("HAPI 8.8 does not check the target type of a Reference (targetProfile); "
                 "the engine does, as the profile asks.")
_URN_IN_TRANSACTION = ("A urn:uuid reference that names no entry of a transaction: HAPI only warns ('URN reference is "
                       "not locally contained within the bundle'); the engine makes it an error, because the "
                       "transaction cannot be processed as sent (the reference cannot be resolved).")
KNOWN_DIFFERENCES: dict[str, Difference] = {
    "request-subject-is-a-practitioner": Difference(_TARGET_TYPES, hapi_valid=True),
    "group-action-resource-is-a-patient": Difference(_TARGET_TYPES, hapi_valid=True),
    "request-detected-issue-is-an-observation": Difference(_TARGET_TYPES, hapi_valid=True),
    "detected-issue-implicates-a-patient": Difference(_TARGET_TYPES, hapi_valid=True),
    "bundle-group-action-not-an-entry": Difference(_URN_IN_TRANSACTION, hapi_valid=True,
                                                   hapi_warns="URN reference is not locally contained"),
    "bundle-day-member-not-an-entry": Difference(_URN_IN_TRANSACTION, hapi_valid=True,
                                                 hapi_warns="URN reference is not locally contained"),
    "day-code-with-an-unknown-diary-code": Difference(
        "HAPI checks a code against a CodeSystem stored on it only where the element has a binding it checks; "
        "Observation.code has only an example binding, so a made-up code of the complete CodeSystem "
        "migraine-diary passes. The engine checks every coding of the project's CodeSystems: a Coding's code "
        "must be a code of its system.", hapi_valid=True),
}

#: HAPI holds no LOINC CodeSystem (the test EHR loads no external terminology), so it cannot check a
#: LOINC code against a required ValueSet and reports an error for each one: the LOINC answers of
#: the 4-point pain scale (ValueSet diary-pain-4-point, in the outcome Observations). The engine
#: checks them against the ValueSet's expansion. Such an error is set aside before a case is judged,
#: and only when it names one of those answers; any other HAPI error stays.
_LOINC_UNKNOWN = "CodeSystem is unknown and can't be validated: http://loinc.org for 'http://loinc.org#{}'"
PAIN_ANSWERS = ("LA131-5", "LA15111-0", "LA135-6", "LA15109-4")


def _set_aside(issues: list[Issue]) -> list[Issue]:
    """HAPI's issues without its errors about the LOINC pain answers it cannot look up."""
    unknown = {_LOINC_UNKNOWN.format(code) for code in PAIN_ANSWERS}
    return [i for i in issues if i.get("diagnostics") not in unknown]


# -- where an issue points -------------------------------------------------------------------------

# FHIR R4 data type names, as they end a choice element's JSON name (valueQuantity, effectiveDateTime).
_TYPE_NAMES = sorted(
    ["Base64Binary", "Boolean", "Canonical", "Code", "Date", "DateTime", "Decimal", "Id", "Instant", "Integer", "Markdown", "Oid", "PositiveInt", "String", "Time", "UnsignedInt", "Uri", "Url", "Uuid", "Address", "Age", "Annotation", "Attachment", "CodeableConcept", "Coding", "ContactPoint", "Count", "Distance", "Duration", "HumanName", "Identifier", "Money", "Period", "Quantity", "Range", "Ratio", "Reference", "SampledData", "Signature", "Timing", "ContactDetail", "Contributor", "DataRequirement", "Expression", "ParameterDefinition", "RelatedArtifact", "TriggerDefinition", "UsageContext", "Dosage", "Meta"],
    key=len, reverse=True)
_CHOICE_SUFFIX = re.compile(r"(?<=[a-z])(?:" + "|".join(_TYPE_NAMES) + r")$")
_RESOURCE_MARK = re.compile(r"/\*[^*]*\*/")
_ONE_STEP = re.compile(r"\.[A-Za-z][A-Za-z0-9]*(\[\d+\])?")
_RESOURCE_ROOT = re.compile(r"(^[A-Z][A-Za-z]*|\.resource|\.contained\[\d+\])$")
_PARSER_ELEMENT = re.compile(r'\[element="([^"]+)"\]')


def _without_call(path: str, function: str) -> str:
    """``path`` with every ``.function(...)`` removed (parentheses may nest: ``where(a and (b))``)."""
    marker = f".{function}("
    while marker in path:
        start = path.index(marker)
        depth, at = 0, start + len(marker) - 1
        for at in range(start + len(marker) - 1, len(path)):
            depth += {"(": 1, ")": -1}.get(path[at], 0)
            if depth == 0:
                break
        path = path[:start] + path[at + 1:]
    return path


def _step_name(step: str) -> str:
    """A path step without its index and type suffix: ``valueQuantity[0]`` -> ``value``."""
    name = step.split("[", 1)[0]
    return _CHOICE_SUFFIX.sub("", name) if name[:1].islower() else name


def normalize(path: str) -> str:
    """An element path with HAPI's and the engine's spellings made one (see ``same_element``)."""
    path = _RESOURCE_MARK.sub("", path)
    path = _without_call(_without_call(path, "ofType"), "where")
    path = path.replace("[x]", "")
    steps = []
    for step in path.split("."):
        index = step[step.index("["):] if "[" in step else ""
        steps.append(_step_name(step) + index)
    return ".".join(steps)


def same_element(engine_expr: str, hapi_expr: str) -> bool:
    """Whether the engine's location and HAPI's name the same element.

    Both are normalized first (``normalize``):

    * HAPI marks the resource inside a Bundle or a contained resource with its type and id,
      ``Bundle.entry[0].resource/*Observation/null*/.hasMember[4]``: the ``/*...*/`` is removed.
    * HAPI writes a choice element as ``value.ofType(Quantity)`` or ``value[x]``, the engine as the
      JSON name ``valueQuantity``: ``.ofType(X)`` and ``[x]`` are removed and a data type name ending
      a step is cut (``valueQuantity`` -> ``value``, ``medicationReference`` -> ``medication``). The
      cut is applied to both sides alike, so a non-choice name that happens to end in a type name
      (``instantiatesCanonical``) still compares equal to itself.
    * ``.where(...)`` filters (HAPI's slice locations) are removed.

    Then the two name the same element when equal, or when one is the other plus one step (a
    name with an optional index):

    * the engine's one step below HAPI's: HAPI reports a missing element, an unknown element and
      a slice's count on the parent (``Observation`` for a missing ``Observation.subject``; the
      engine names the element itself);
    * HAPI's one step below the engine's, unless the engine's is a resource itself: HAPI reports
      follow-on problems inside a wrongly typed value on its child
      (``effective.ofType(Period).start`` beside the engine's ``effectivePeriod``). An engine
      error on a whole resource (an invariant of the profile) does not stand for HAPI's errors
      on the resource's elements (core ``per-1`` on ``Observation.effective``).

    Only one step is allowed, so an error high up does not match everything below it.

    HAPI's JSON parser refuses some values before validating (a code outside a base required
    binding, a malformed dateTime or boolean) and names only the JSON property
    (``[element="status"]``); ``hapi_paths`` turns that into ``@status``, which matches when the
    engine's last step has that name (after the same normalization).
    """
    ours = normalize(engine_expr)
    if hapi_expr.startswith("@"):
        return _step_name(ours.rsplit(".", 1)[-1]) == _step_name(hapi_expr[1:])
    theirs = normalize(hapi_expr)
    if ours == theirs or _one_step_below(ours, theirs):
        return True
    return not _RESOURCE_ROOT.search(ours) and _one_step_below(theirs, ours)


def _one_step_below(lower: str, upper: str) -> bool:
    return lower.startswith(upper) and _ONE_STEP.fullmatch(lower[len(upper):]) is not None


def hapi_paths(issue: Issue) -> list[str]:
    """Where a HAPI issue points: its ``expression`` (or ``location``), or, for a parser refusal
    that has neither, ``@<property>`` from the diagnostics."""
    paths = list(issue.get("expression") or issue.get("location") or [])
    if not paths:
        named = _PARSER_ELEMENT.search(issue.get("diagnostics", ""))
        if named:
            paths.append("@" + named.group(1))
    return paths


def _errors(issues: list[Issue]) -> list[Issue]:
    return [i for i in issues if i.get("severity") in ("error", "fatal")]


# -- running both validators -----------------------------------------------------------------------


@dataclass(frozen=True)
class Answers:
    """Both validators' issues for one case."""

    hapi: list[Issue]
    engine: list[Issue]

    @property
    def hapi_errors(self) -> list[Issue]:
        return _errors(_set_aside(self.hapi))

    @property
    def engine_errors(self) -> list[Issue]:
        return _errors(self.engine)


def _conformance_resources() -> Iterator[dict[str, Any]]:
    """Code systems first, then value sets, then the profiles and extensions that use them."""
    for kind in ("CodeSystem", "ValueSet", "StructureDefinition"):
        for path in sorted((ROOT / "profiles").glob(f"{kind}-*.json")):
            yield json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture(scope="session")
def hapi_with_package(ehr_url: str) -> str:
    """The HAPI base URL, once the package's conformance resources are stored there."""
    with requests.Session() as session:
        for resource in _conformance_resources():
            url = f"{ehr_url}/{resource['resourceType']}/{resource['id']}"
            answer = session.put(url, json=resource, headers={"Content-Type": "application/fhir+json"}, timeout=120)
            assert answer.status_code in (200, 201), f"PUT {url}: {answer.status_code} {answer.text[:300]}"
    return ehr_url


def _hapi_validate(session: requests.Session, base: str, case: Case) -> list[Issue]:
    params = {"profile": case.profile} if case.profile else None
    answer = session.post(f"{base}/{case.resource['resourceType']}/$validate", params=params,
                          data=json.dumps(case.resource), timeout=120,
                          headers={"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"})
    outcome = answer.json()
    assert outcome.get("resourceType") == "OperationOutcome", f"{answer.status_code}: {answer.text[:300]}"
    return list(outcome.get("issue", []))


@pytest.fixture(scope="module")
def answers(hapi_with_package: str) -> dict[str, Answers]:
    """Every case through HAPI and through the engine, once for the module."""
    validator = default_validator()
    found = {}
    with requests.Session() as session:
        for case in CASES:
            engine = validator.validate(case.resource, profile=case.profile)["issue"]
            found[case.id] = Answers(_hapi_validate(session, hapi_with_package, case), engine)
    return found


# -- judging one case ------------------------------------------------------------------------------


def _shown(issues: list[Issue]) -> list[tuple[Any, str]]:
    return [(i.get("expression") or i.get("location"), i.get("diagnostics", "")[:200]) for i in issues]


def _unmatched(issues: list[Issue], others: list[Issue], ours_first: bool) -> list[Issue]:
    """The issues of one validator at no element the other's issues are at."""
    def matches(one: Issue, other: Issue) -> bool:
        engine, hapi = (one, other) if ours_first else (other, one)
        return any(same_element(engine["expression"][0], p) for p in hapi_paths(hapi))
    return [i for i in issues if not any(matches(i, o) for o in others)]


def judge(case: Case, answers: Answers) -> str:
    """'agree' or 'known difference'; an AssertionError says how the case fails."""
    hapi, engine = answers.hapi_errors, answers.engine_errors
    said = f"HAPI errors {_shown(hapi)}; engine errors {_shown(engine)}"
    known = KNOWN_DIFFERENCES.get(case.id)
    assert bool(engine) != case.expected_valid, f"the engine's verdict is not the corpus's: {said}"
    if known is not None and known.hapi_valid:
        assert not hapi and engine, f"documented: HAPI valid, engine invalid; now {said}"
        if known.hapi_warns:
            warnings = [i for i in answers.hapi if i.get("severity") == "warning" and known.hapi_warns in i.get("diagnostics", "")]
            first = engine[0]["expression"][0]
            assert any(same_element(first, p) for w in warnings for p in hapi_paths(w)), \
                f"documented: HAPI warns '{known.hapi_warns}' at {first}; warnings {_shown(warnings)}"
        return "known difference"
    assert bool(hapi) == bool(engine), f"the verdicts differ: {said}"
    if not engine:
        return "agree"
    first = engine[0]["expression"][0]
    assert any(same_element(first, p) for i in hapi for p in hapi_paths(i)), \
        f"the engine's first error is at {first}, at no element of HAPI's: {said}"
    engine_only = _unmatched(engine, hapi, ours_first=True)
    assert not engine_only, f"engine errors at elements HAPI does not report: {_shown(engine_only)}; {said}"
    hapi_only = _unmatched(hapi, engine, ours_first=False)
    if known is None:
        assert not hapi_only, f"HAPI errors at elements the engine does not report: {_shown(hapi_only)}"
        return "agree"
    assert hapi_only and all(known.hapi_only in i.get("diagnostics", "") for i in hapi_only), \
        f"documented: HAPI adds only {known.hapi_only}; its unmatched errors are {_shown(hapi_only)}"
    return "known difference"


# -- the tests -------------------------------------------------------------------------------------


def test_the_corpus_covers_every_profile_and_rule_kind() -> None:
    invalid = [c for c in CASES if not c.expected_valid]
    assert len(invalid) >= 60
    assert {c.profile_id for c in invalid} == set(PROFILE_IDS)
    assert {c.kind for c in invalid} >= set(RULE_KINDS)
    assert set(KNOWN_DIFFERENCES) <= {c.id for c in CASES}, "a documented difference names no case"


@pytest.mark.parametrize(("engine_expr", "hapi_expr", "same"), [
    ("Observation.component[1].valueCodeableConcept", "Observation.component[1].value.ofType(CodeableConcept)", True),
    ("Observation.component[0].valueInteger", "Observation.component[0].value[x]", True),
    ("MedicationRequest.requester", "MedicationRequest", True),
    ("Observation.valueQuantity.brand", "Observation.value[x]", True),
    ("Observation.effectivePeriod", "Observation.effective.ofType(Period).start", True),
    ("Bundle.entry[0].resource.hasMember[4].reference", "Bundle.entry[0].resource/*Observation/null*/.hasMember[4]", True),
    ("Observation.extension[0]", "Observation.extension.where(url = 'https://x.org/e' and (value.exists()))[0]", True),
    ("Observation.status", "@status", True),
    ("Observation.effectiveDateTime", "@effectiveDateTime", True),
    ("MedicationRequest.instantiatesCanonical[0]", "MedicationRequest.instantiatesCanonical[0]", True),
    ("Observation", "Observation.effective.ofType(Period)", False),
    ("Observation.component[0].valueInteger", "Observation", False),
    ("Observation.component[0]", "Observation.component[1]", False),
    ("Observation.subject", "Observation.performer[0]", False),
    ("Observation.valueQuantity.code", "@status", False),
])
def test_same_element(engine_expr: str, hapi_expr: str, same: bool) -> None:
    assert same_element(engine_expr, hapi_expr) is same


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_the_engine_and_hapi_agree(case: Case, answers: dict[str, Answers]) -> None:
    judge(case, answers[case.id])


def test_summary(answers: dict[str, Answers]) -> None:
    """The counts, printed (visible with -s): every case agrees or is a documented difference."""
    outcomes: dict[str, str] = {}
    for case in CASES:
        try:
            outcomes[case.id] = judge(case, answers[case.id])
        except AssertionError:
            outcomes[case.id] = "fails"
    valid = sum(c.expected_valid for c in CASES)
    agree = sum(v == "agree" for v in outcomes.values())
    known = sum(v == "known difference" for v in outcomes.values())
    failing = sorted(k for k, v in outcomes.items() if v == "fails")
    print(f"\nHAPI cross-check: {len(CASES)} cases ({valid} valid, {len(CASES) - valid} invalid over "
          f"{len(PROFILE_IDS)} profiles); {agree} agree, {known} known differences, {len(failing)} failing")
    for case_id in sorted(KNOWN_DIFFERENCES):
        print(f"  known difference {case_id}: {KNOWN_DIFFERENCES[case_id].reason}")
    assert not failing, failing
    assert known == len(KNOWN_DIFFERENCES)


def test_hapi_reports_exactly_the_loinc_pain_answers_it_cannot_look_up(answers: dict[str, Answers]) -> None:
    """The errors set aside (``_set_aside``) are there: one per LOINC pain answer of the valid
    outcome Observations, so the exception goes when HAPI can check LOINC codes."""
    outcomes = [c for c in CASES if c.expected_valid and c.resource.get("resourceType") == "Observation"
                and c.profile_id == "diary-medication-outcome"]
    assert outcomes, "the corpus has valid outcome Observations"
    for case in outcomes:
        pains = [coding["code"] for component in case.resource.get("component", [])
                 for coding in component.get("valueCodeableConcept", {}).get("coding", []) if coding["code"] in PAIN_ANSWERS]
        aside = [i for i in answers[case.id].hapi if i not in _set_aside(answers[case.id].hapi)]
        assert [i["diagnostics"] for i in aside] == [_LOINC_UNKNOWN.format(code) for code in pains], case.id
