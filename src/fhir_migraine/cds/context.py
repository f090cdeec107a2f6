"""The patient's context as the order-sign rules see it, read from the prefetched FHIR resources:
age and sex, the latest weight, eGFR and QTc, pregnancy tests, active conditions, and every drug
ordered, given or taken (the diary's MedicationStatements) with its time.

Codes and their public sources are in docs/cds-rules.md ("Codes the context reads").
Spec: https://hl7.org/fhir/R4/medicationrequest.html, https://hl7.org/fhir/R4/observation.html
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.inputs.orders import parse_instant

LOINC = terminology.LOINC
SNOMED = terminology.SNOMED
ICD10CM = terminology.ICD10CM
#: Body weight (LOINC 29463-7), as the project's orders and the US Core vital signs read it.
WEIGHT_CODES = frozenset({"29463-7"})
#: eGFR: 33914-3 (MDRD), 62238-1 (CKD-EPI), 98979-8 (CKD-EPI 2021); sources in docs/cds-rules.md.
EGFR_CODES = frozenset({"33914-3", "62238-1", "98979-8"})
#: QTc interval (LOINC 8636-3, "Q-T interval corrected").
QTC_CODES = frozenset({"8636-3"})
#: The qualitative hCG (pregnancy test) codes of the NLM VSAC value set "Pregnancy Test"
#: (OID 2.16.840.1.113883.3.464.1003.111.12.1011): urine, serum and rapid tests, [Presence].
PREGNANCY_TEST_CODES = frozenset({"2106-3", "2112-1", "2110-5", "2118-8", "80384-1", "80385-8"})
#: Conditions the rules name, by ICD-10-CM code prefix (CDC/NCHS ICD-10-CM Tabular List) or SNOMED
#: CT code (sources in docs/cds-rules.md).
CONDITION_PREFIXES: dict[str, tuple[str, ...]] = {
    "coronary-artery-disease": ("I20", "I21", "I22", "I24", "I25"),
    "uncontrolled-hypertension": ("I16",),
    "pregnancy": ("O", "Z33.1", "Z34"),
    "hemiplegic-or-brainstem-aura": ("G43.4",),
}
#: SNOMED CT codes of the same conditions: none yet (a site's SNOMED-coded Condition is not read).
CONDITION_SNOMED: dict[str, frozenset[str]] = {}
#: A pregnancy test's result: the v3 ObservationInterpretation codes NEG and POS
#: (https://hl7.org/fhir/R4/v3/ObservationInterpretation/cs.html) as interpretation or value, or
#: the value's text.
NEGATIVE = frozenset({"NEG", "negative"})
POSITIVE = frozenset({"POS", "positive"})
INACTIVE_CONDITION = frozenset({"inactive", "resolved", "remission"})
ORDER_STATUSES = frozenset({"active", "completed", "on-hold", "draft"})
FINAL = ("final", "amended", "corrected")


@dataclass(frozen=True)
class Drug:
    """One drug of one resource: ``key`` is the drug table's key (or the name as written when the
    table lacks it), ``at`` when it was given, taken, or is to start."""

    key: str
    source: str  # draft | order | administration | diary
    at: datetime | None
    resource: Mapping[str, Any] = field(compare=False, repr=False)
    path: str = ""
    dose: tuple[Decimal, str] | None = None
    route: str | None = None
    status: str | None = None
    end: datetime | None = None

    @property
    def drug_class(self) -> str | None:
        found = terminology.drug_class(self.key)
        return found.key if found else None


@dataclass(frozen=True)
class PatientContext:
    """What the rules read; a value is None when the prefetch had no such fact (or no prefetch)."""

    now: datetime
    age: int | None = None
    sex: str | None = None
    weight_kg: Decimal | None = None
    egfr: Decimal | None = None
    qtc_ms: Decimal | None = None
    pregnancy_tests: tuple[tuple[datetime, bool], ...] = ()  # (when, positive)
    conditions: frozenset[str] = frozenset()
    drugs: tuple[Drug, ...] = ()
    drafts: tuple[Drug, ...] = ()
    missing: frozenset[str] = frozenset()  # the prefetch keys that could not be had


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one: the EHR's data is read, never trusted."""
    return value if isinstance(value, dict) else {}


def array(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def resources(found: Any) -> Iterator[dict[str, Any]]:
    """The resources of a prefetched resource or searchset Bundle (outcome entries left out)."""
    if not isinstance(found, dict):
        return
    if found.get("resourceType") != "Bundle":
        yield found
        return
    for entry in array(found.get("entry")):
        if not isinstance(entry, dict) or obj(entry.get("search")).get("mode") == "outcome":
            continue
        resource = entry.get("resource")
        if isinstance(resource, dict):
            yield resource


def instant(value: Any) -> datetime | None:
    """A FHIR dateTime as an aware datetime (a date alone is its midnight UTC), or None."""
    if not isinstance(value, str):
        return None
    found = parse_instant(value)
    if found is not None:
        return found if found.tzinfo else found.replace(tzinfo=UTC)
    try:
        day = date.fromisoformat(value[:10])
    except ValueError:
        return None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def codings(concept: Any) -> list[tuple[str, str]]:
    if not isinstance(concept, dict):
        return []
    return [(str(c.get("system")), str(c.get("code"))) for c in array(concept.get("coding")) if isinstance(c, dict)]


def _has_code(resource: Mapping[str, Any], system: str, codes: frozenset[str]) -> bool:
    return any(s == system and c in codes for s, c in codings(resource.get("code")))


def drug_key(concept: Any) -> str | None:
    """The drug table key of a CodeableConcept: by RxNorm code, else by its text or display."""
    if not isinstance(concept, dict):
        return None
    for system, code in codings(concept):
        key = terminology.drug_key_by_code(system, code)
        if key is not None:
            return key
    names = [concept.get("text")] + [c.get("display") for c in array(concept.get("coding")) if isinstance(c, dict)]
    for name in names:
        if isinstance(name, str) and name.strip():
            return terminology.drug_key(name) or terminology.normalize_name(name)
    return None


def _medication_keys(resource: Mapping[str, Any]) -> list[str]:
    """The drugs of a MedicationRequest/Administration/Statement: its medicationCodeableConcept,
    or the active ingredients of the contained Medication it references (an infusion bag)."""
    key = drug_key(resource.get("medicationCodeableConcept"))
    if key is not None:
        return [key]
    reference = obj(resource.get("medicationReference")).get("reference")
    if not isinstance(reference, str) or not reference.startswith("#"):
        return []
    for contained in array(resource.get("contained")):
        if isinstance(contained, dict) and contained.get("id") == reference[1:]:
            own = drug_key(contained.get("code"))
            found = [drug_key(i.get("itemCodeableConcept")) for i in array(contained.get("ingredient"))
                     if isinstance(i, dict) and i.get("isActive") is not False]
            keys = [k for k in found if k is not None]
            return keys or ([own] if own else [])
    return []


def _quantity(value: Any) -> tuple[Decimal, str] | None:
    if not isinstance(value, dict) or isinstance(value.get("value"), bool):
        return None
    try:
        amount = Decimal(str(value.get("value")))
    except InvalidOperation:
        return None
    unit = value.get("code") or value.get("unit")
    # A value no body, dose or interval has (1e999) is left unread rather than written out whole.
    if not amount.is_finite() or abs(amount.adjusted()) > 9 or not isinstance(unit, str):
        return None
    return amount, unit


def _dosage(resource: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = resource.get(key)
    if isinstance(found, list):
        found = found[0] if found else None
    return found if isinstance(found, dict) else {}


def _dose(dosage: Mapping[str, Any]) -> tuple[Decimal, str] | None:
    if "dose" in dosage:  # MedicationAdministration.dosage.dose
        return _quantity(dosage.get("dose"))
    for rate in array(dosage.get("doseAndRate")):
        if isinstance(rate, dict) and "doseQuantity" in rate:
            return _quantity(rate["doseQuantity"])
    return None


def _route(dosage: Mapping[str, Any]) -> str | None:
    route = dosage.get("route")
    if isinstance(route, dict):
        text = _str(route.get("text")) or next(
            (c["display"] for c in array(route.get("coding")) if isinstance(c, dict) and _str(c.get("display"))), None)
        return text.lower() if text else None
    return None


def _period(resource: Mapping[str, Any], prefix: str) -> tuple[datetime | None, datetime | None]:
    if f"{prefix}DateTime" in resource:
        at = instant(resource.get(f"{prefix}DateTime"))
        return at, at
    period = resource.get(f"{prefix}Period")
    if isinstance(period, dict):
        return instant(period.get("start")), instant(period.get("end"))
    return None, None


def request_drugs(resource: Mapping[str, Any], source: str, path: str) -> list[Drug]:
    """The drugs of a MedicationRequest: when it starts (the timing's bounds, else authoredOn)."""
    dosage = _dosage(resource, "dosageInstruction")
    bounds = obj(obj(dosage.get("timing")).get("repeat")).get("boundsPeriod")
    start = end = None
    if isinstance(bounds, dict):
        start, end = instant(bounds.get("start")), instant(bounds.get("end"))
    start = start or instant(resource.get("authoredOn"))
    status = _str(resource.get("status"))
    return [Drug(key, source, start, resource, path, _dose(dosage), _route(dosage), status, end)
            for key in _medication_keys(resource)]


def event_drugs(resource: Mapping[str, Any], source: str, path: str) -> list[Drug]:
    """The drugs of a MedicationAdministration or MedicationStatement, at their effective time."""
    start, end = _period(resource, "effective")
    dosage = _dosage(resource, "dosage")
    status = _str(resource.get("status"))
    return [Drug(key, source, start, resource, path, _dose(dosage), _route(dosage), status, end)
            for key in _medication_keys(resource)]


def _age(patient: Mapping[str, Any], now: datetime) -> int | None:
    born = patient.get("birthDate")
    if not isinstance(born, str):
        return None
    try:
        day = date.fromisoformat(born) if len(born) == 10 else date(int(born[:4]), 1, 1)
    except ValueError:
        return None
    today = now.date()
    return today.year - day.year - ((today.month, today.day) < (day.month, day.day))


def _latest(observations: list[dict[str, Any]], codes: frozenset[str]) -> dict[str, Any] | None:
    found = [(instant(o.get("effectiveDateTime") or obj(o.get("effectivePeriod")).get("start") or o.get("issued")), o)
             for o in observations if _has_code(o, LOINC, codes) and _str(o.get("status")) in FINAL]
    dated = [(at, o) for at, o in found if at is not None]
    return max(dated, key=lambda pair: pair[0])[1] if dated else None


def _weight_kg(observation: Mapping[str, Any] | None) -> Decimal | None:
    value = _quantity(obj(observation).get("valueQuantity"))
    if value is None:
        return None
    factors = {"kg": Decimal(1), "g": Decimal("0.001"), "[lb_av]": Decimal("0.45359237"), "lb": Decimal("0.45359237")}
    return value[0] * factors[value[1]] if value[1] in factors else None


def _value(observation: Mapping[str, Any] | None, units: tuple[str, ...]) -> Decimal | None:
    value = _quantity(obj(observation).get("valueQuantity"))
    return value[0] if value is not None and value[1] in units else None


def _pregnancy_result(observation: Mapping[str, Any]) -> bool | None:
    """True positive, False negative, None when the result cannot be read."""
    codes = {c for _, c in codings(observation.get("valueCodeableConcept"))}
    codes |= {c for i in array(observation.get("interpretation")) for _, c in codings(i)}
    text = obj(observation.get("valueCodeableConcept")).get("text") or observation.get("valueString")
    if isinstance(text, str):
        codes.add(text.strip().lower())
    if codes & POSITIVE:
        return True
    if codes & NEGATIVE:
        return False
    return None


def condition_keys(condition: Mapping[str, Any]) -> set[str]:
    """The rule conditions an active Condition is (none when it is inactive, resolved or refuted)."""
    status = {c for _, c in codings(condition.get("clinicalStatus"))}
    if status & INACTIVE_CONDITION or {c for _, c in codings(condition.get("verificationStatus"))} & {
            "refuted", "entered-in-error"}:
        return set()
    found = set()
    for system, code in codings(condition.get("code")):
        for key, prefixes in CONDITION_PREFIXES.items():
            if system == ICD10CM and code.upper().startswith(prefixes):
                found.add(key)
        for key, codes in CONDITION_SNOMED.items():
            if system == SNOMED and code in codes:
                found.add(key)
    return found


def read(prefetch: Mapping[str, Any], drafts: list[tuple[str, dict[str, Any]]], now: datetime) -> PatientContext:
    """The context from the prefetch (keys of cds.services) and the draft orders with their paths."""
    patient = next(resources(prefetch.get("patient")), {})
    observations = [o for o in resources(prefetch.get("observations")) if o.get("resourceType") == "Observation"]
    tests = []
    for o in observations:
        at = instant(o.get("effectiveDateTime") or o.get("issued"))
        result = _pregnancy_result(o) if _has_code(o, LOINC, PREGNANCY_TEST_CODES) else None
        if at is not None and result is not None:
            tests.append((at, result))
    conditions: set[str] = set()
    for c in resources(prefetch.get("conditions")):
        if c.get("resourceType") == "Condition":
            conditions |= condition_keys(c)
    drugs: list[Drug] = []
    for r in resources(prefetch.get("medicationRequests")):
        if r.get("resourceType") == "MedicationRequest" and _str(r.get("status")) in ORDER_STATUSES - {"draft"}:
            drugs += request_drugs(r, "order", "")
    for r in resources(prefetch.get("administrations")):
        if r.get("resourceType") == "MedicationAdministration" and _str(r.get("status")) in ("completed", "in-progress"):
            drugs += event_drugs(r, "administration", "")
    for r in resources(prefetch.get("statements")):
        if r.get("resourceType") == "MedicationStatement" and _str(r.get("status")) in ("completed", "active"):
            drugs += event_drugs(r, "diary", "")
    draft_drugs = [d for path, r in drafts for d in request_drugs(r, "draft", path)]
    sex = _str(patient.get("gender"))
    return PatientContext(
        now=now, age=_age(patient, now), sex=sex,
        weight_kg=_weight_kg(_latest(observations, WEIGHT_CODES)),
        egfr=_value(_latest(observations, EGFR_CODES), ("mL/min/{1.73_m2}", "mL/min/1.73m2", "mL/min")),
        qtc_ms=_value(_latest(observations, QTC_CODES), ("ms",)),
        pregnancy_tests=tuple(sorted(tests)), conditions=frozenset(conditions),
        drugs=tuple(drugs), drafts=tuple(draft_drugs),
        missing=frozenset(key for key, value in prefetch.items() if value is None),
    )
