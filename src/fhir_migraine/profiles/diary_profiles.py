"""Differentials of the diary Observation profiles (one per kind of diary Observation).

All are patient-reported (category ``survey``, the patient as performer) and carry the diary
identifier; the codes are the ones the diary mapping writes: ``terminology.observation_code``.
Components are sliced by their code, closed: a component the profile does not name is an error.
"""

from __future__ import annotations

from dataclasses import dataclass

from fhir_migraine import terminology
from fhir_migraine.identifiers import DIARY_SYSTEM, SUMMARY_SYSTEM
from fhir_migraine.mapping.diary import CATEGORY
from fhir_migraine.profiles.elements import Element, coding_pattern, el, invariant, of_type, reference, sliced_by

OBS = "Observation"
# The profile of each kind of diary Observation (the kinds of terminology.observation_code).
PROFILE_OF_KIND = {
    "diary_day": "diary-day",
    "attack": "diary-attack",
    "medication_outcome": "diary-medication-outcome",
    "oral_intake": "diary-oral-intake",
    "infusion_received": "diary-infusion-received",
    "menstruation": "diary-menstruation",
    "midas_score": "diary-midas-score",
    "hit6_score": "diary-hit6-score",
}


@dataclass(frozen=True)
class Component:
    """A component slice: the component kind (its code), cardinality, value type, binding."""

    kind: str
    min: int
    max: int | str
    value_type: str
    binding: str | None = None
    constraint: tuple[Element, ...] = ()

    @property
    def slice_name(self) -> str:
        head, *rest = self.kind.split("_")
        return head + "".join(part.capitalize() for part in rest)


def _head(kind: str) -> list[Element]:
    """identifier, status, category, code, subject: the same for every diary Observation."""
    survey = {"coding": [{"system": CATEGORY, "code": "survey"}]}
    return [
        el(f"{OBS}.identifier", min=1, slicing=sliced_by("value", "system")),
        el(f"{OBS}.identifier:diary", min=1, max=1),
        el(f"{OBS}.identifier:diary.system", min=1, fixed=("Uri", DIARY_SYSTEM)),
        el(f"{OBS}.identifier:diary.value", min=1),
        el(f"{OBS}.status", min=1),
        el(f"{OBS}.category", min=1, slicing=sliced_by("pattern", "$this")),
        el(f"{OBS}.category:survey", min=1, max=1, pattern=("CodeableConcept", survey)),
        el(f"{OBS}.code", pattern=("CodeableConcept", coding_pattern(terminology.observation_code(kind)))),
        el(f"{OBS}.subject", min=1, types=reference("Patient")),
    ]


def _effective(*types: str) -> Element:
    return el(f"{OBS}.effective[x]", min=1, types=of_type(*types))


def _performer() -> Element:
    return el(f"{OBS}.performer", min=1, max=1, types=reference("Patient", "RelatedPerson"),
              short="Patient-reported: the patient (or a relative) who kept the diary")


def _components(*components: Component) -> list[Element]:
    required = sum(c.min for c in components)
    elements = [el(f"{OBS}.component", min=1 if required else None, slicing=sliced_by("pattern", "code", rules="closed"))]
    for c in components:
        base = f"{OBS}.component:{c.slice_name}"
        elements += [
            el(base, min=c.min, max=c.max, constraint=list(c.constraint) or None),
            el(f"{base}.code", pattern=("CodeableConcept", coding_pattern(terminology.observation_code(c.kind)))),
            el(f"{base}.value[x]", min=1, types=of_type(c.value_type), binding=c.binding),
        ]
    return elements


def diary_day() -> list[Element]:
    return [
        el(OBS, constraint=[
            invariant("mig-day-1", "A diary day says whether there was a headache, or why not",
                      "value.exists() or dataAbsentReason.exists()"),
        ]),
        *_head("diary_day"),
        _effective("dateTime"),
        _performer(),
        el(f"{OBS}.value[x]", types=of_type("boolean"), short="true: a headache that day; false: headache-free"),
        el(f"{OBS}.note", max=1),
        el(f"{OBS}.hasMember", types=reference("Observation", "QuestionnaireResponse"),
           short="The day's other diary Observations, and its MIDAS or HIT-6 answers"),
    ]


PEAK_INTENSITY_RANGE = invariant(
    "mig-att-2", "Peak intensity is 0 to 10", "value.ofType(integer).all($this >= 0 and $this <= 10)"
)


def diary_attack() -> list[Element]:
    return [
        el(OBS, constraint=[
            # Compared as instants, whatever their UTC offsets (HAPI does; docs/profiles.md says what a
            # FHIRPath engine that compares the strings gets wrong). Not toDateTime(): HAPI lacks it.
            invariant("mig-att-1", "An attack does not end before it starts",
                      "effective.end.empty() or effective.start <= effective.end"),
        ]),
        *_head("attack"),
        _effective("Period"),
        el(f"{OBS}.effective[x].start", min=1),
        _performer(),
        *_components(
            Component("peak_intensity", 0, 1, "integer", constraint=(PEAK_INTENSITY_RANGE,)),
            Component("location", 0, 1, "CodeableConcept", "diary-headache-location"),
            Component("quality", 0, 1, "CodeableConcept", "diary-headache-quality"),
            Component("worse_with_activity", 0, 1, "boolean"),
            Component("symptom", 0, "*", "CodeableConcept", "diary-symptom"),
            Component("aura", 0, "*", "CodeableConcept", "diary-aura"),
            Component("trigger", 0, "*", "CodeableConcept", "diary-trigger"),
            Component("disability", 0, 1, "CodeableConcept", "diary-disability"),
        ),
    ]


MS = "MedicationStatement"


def diary_medication_statement() -> list[Element]:
    """A medication the patient took, as they recorded it (R4 MedicationStatement): the drug, when,
    the dose and route, the patient as information source, the attack it was taken for."""
    dosage = f"{MS}.dosage"
    return [
        el(MS),
        el(f"{MS}.identifier", min=1, slicing=sliced_by("value", "system")),
        el(f"{MS}.identifier:diary", min=1, max=1),
        el(f"{MS}.identifier:diary.system", min=1, fixed=("Uri", DIARY_SYSTEM)),
        el(f"{MS}.identifier:diary.value", min=1),
        el(f"{MS}.status", short="completed; entered-in-error once the diary entry is retracted"),
        el(f"{MS}.medication[x]", types=of_type("CodeableConcept"), short="The drug taken: its code, the name as written"),
        el(f"{MS}.medication[x].text", min=1),
        el(f"{MS}.subject", types=reference("Patient")),
        el(f"{MS}.effective[x]", min=1, types=of_type("dateTime"), short="When it was taken"),
        el(f"{MS}.informationSource", min=1, types=reference("Patient", "RelatedPerson"),
           short="Patient-reported: the patient (or a relative) who kept the diary"),
        el(f"{MS}.reasonReference", max=1, types=reference("Observation"), short="The headache attack it was taken for"),
        el(dosage, min=1, max=1),
        el(f"{dosage}.route", binding="diary-medication-route"),
        el(f"{dosage}.doseAndRate", min=1, max=1),
        el(f"{dosage}.doseAndRate.dose[x]", min=1, types=of_type("Quantity"), short="The dose taken (UCUM)"),
    ]


def diary_medication_outcome() -> list[Element]:
    """The outcomes at 2 hours of a medication taken (IHS guidelines for acute-treatment trials),
    part of its MedicationStatement; only those the patient recorded."""
    head = _head("medication_outcome")
    identifier = [e for e in head if e["path"].startswith(f"{OBS}.identifier")]
    # In the base's element order (a differential follows it): identifier, partOf, status, ...
    return [
        el(OBS),
        *identifier,
        el(f"{OBS}.partOf", min=1, max=1, types=reference("MedicationStatement"), short="The medication taken"),
        *head[len(identifier):],
        _effective("dateTime"),
        _performer(),
        el(f"{OBS}.value[x]", max=0),
        *_components(
            Component("relief_2h", 0, 1, "boolean"),
            Component("pain_2h", 0, 1, "CodeableConcept", "diary-pain-4-point"),
            Component("pain_free_2h", 0, 1, "boolean"),
            Component("mbs_free_2h", 0, 1, "boolean"),
            Component("rescue", 0, 1, "boolean"),
            Component("recurrence_48h", 0, 1, "boolean"),
        ),
    ]


def diary_oral_intake() -> list[Element]:
    return [
        el(OBS),
        *_head("oral_intake"),
        _effective("dateTime"),
        _performer(),
        el(f"{OBS}.value[x]", min=1, types=of_type("Quantity"), short="The volume drunk"),
        el(f"{OBS}.value[x].value", min=1),
        el(f"{OBS}.value[x].system", min=1, fixed=("Uri", terminology.UCUM)),
        el(f"{OBS}.value[x].code", min=1, binding="diary-volume-units"),
        *_components(Component("product", 1, 1, "string")),
    ]


def diary_infusion_received() -> list[Element]:
    return [
        el(OBS),
        *_head("infusion_received"),
        _effective("dateTime"),
        _performer(),
        el(f"{OBS}.value[x]", min=1, types=of_type("boolean")),
        *_components(Component("protocol", 0, 1, "string")),
    ]


def diary_menstruation() -> list[Element]:
    return [
        el(OBS),
        *_head("menstruation"),
        _effective("dateTime"),
        _performer(),
        el(f"{OBS}.value[x]", min=1, types=of_type("boolean"), short="true: menstruating that day; false: not"),
    ]


QR = "QuestionnaireResponse"


def diary_questionnaire_response() -> list[Element]:
    """MIDAS or HIT-6 answers: R4 gives a QuestionnaireResponse one identifier, not a list."""
    from fhir_migraine.mapping.diary import QUESTIONNAIRES

    known = " or ".join(f"questionnaire = '{url}'" for url in QUESTIONNAIRES.values())
    return [
        el(QR, constraint=[invariant("mig-qr-1", "The answers are to the MIDAS or the HIT-6 questionnaire", known)]),
        el(f"{QR}.identifier", min=1),
        el(f"{QR}.identifier.system", min=1, fixed=("Uri", DIARY_SYSTEM)),
        el(f"{QR}.identifier.value", min=1),
        el(f"{QR}.questionnaire", min=1),
        el(f"{QR}.status", fixed=("Code", "completed")),
        el(f"{QR}.subject", min=1, types=reference("Patient")),
        el(f"{QR}.authored", min=1),
        el(f"{QR}.source", min=1, types=reference("Patient", "RelatedPerson"),
           short="Patient-reported: the patient (or a relative) who kept the diary"),
        el(f"{QR}.item", min=1),
        el(f"{QR}.item.answer", min=1, max=1),
    ]


def _questionnaire_score(kind: str, band: Component) -> list[Element]:
    return [
        el(OBS),
        *_head(kind),
        _effective("dateTime"),
        _performer(),
        el(f"{OBS}.value[x]", min=1, types=of_type("integer"), short="The total score"),
        el(f"{OBS}.derivedFrom", min=1, max=1, types=reference("QuestionnaireResponse"), short="The answers scored"),
        *_components(band),
    ]


def diary_midas_score() -> list[Element]:
    return _questionnaire_score("midas_score", Component("midas_grade", 1, 1, "CodeableConcept", "diary-midas-grade"))


def diary_hit6_score() -> list[Element]:
    return _questionnaire_score("hit6_score", Component("hit6_impact", 1, 1, "CodeableConcept", "diary-hit6-impact"))


def _summary_identifier(resource: str) -> list[Element]:
    return [
        el(f"{resource}.identifier", min=1, slicing=sliced_by("value", "system")),
        el(f"{resource}.identifier:summary", min=1, max=1),
        el(f"{resource}.identifier:summary.system", min=1, fixed=("Uri", SUMMARY_SYSTEM)),
        el(f"{resource}.identifier:summary.value", min=1),
    ]


def diary_summary() -> list[Element]:
    """The figures of a patient's diary over a period (mapping/summary_fhir.py): derived data, so
    no performer; one component per figure, closed."""
    from fhir_migraine.mapping.summary_fhir import COUNTS, class_kind

    survey = {"coding": [{"system": CATEGORY, "code": "survey"}]}
    counts = tuple(Component(kind, 1, 1, "integer") for _, kind in COUNTS)
    classes = tuple(Component(class_kind(key), 0, 1, "integer") for key in terminology.drug_class_keys())
    return [
        el(OBS, short="A headache diary's figures over a period: an interpretation, never a diagnosis"),
        *_summary_identifier(OBS),
        el(f"{OBS}.status", min=1),
        el(f"{OBS}.category", min=1, slicing=sliced_by("pattern", "$this")),
        el(f"{OBS}.category:survey", min=1, max=1, pattern=("CodeableConcept", survey)),
        el(f"{OBS}.code", pattern=("CodeableConcept", coding_pattern(terminology.observation_code("diary_summary")))),
        el(f"{OBS}.subject", min=1, types=reference("Patient")),
        _effective("Period"),
        el(f"{OBS}.effective[x].start", min=1),
        el(f"{OBS}.effective[x].end", min=1),
        *_components(
            *counts,
            Component("longest_attack", 0, 1, "Quantity"),
            *classes,
            Component("chronic_pattern", 1, 1, "boolean"),
            Component("menstrually_related", 0, 1, "boolean"),
        ),
    ]


def diary_overuse_risk() -> list[Element]:
    """A class of acute medication taken on as many days as ICHD-3 8.2 counts towards medication
    overuse, the diary summary as evidence."""
    di = "DetectedIssue"
    return [
        el(di, short="A risk of medication-overuse headache read from the diary (ICHD-3 8.2): not a diagnosis"),
        *_summary_identifier(di),
        el(f"{di}.status", fixed=("Code", "final")),
        el(f"{di}.code", min=1, pattern=("CodeableConcept", coding_pattern(terminology.observation_code("overuse_risk")))),
        el(f"{di}.severity", min=1),
        el(f"{di}.patient", min=1, types=reference("Patient")),
        el(f"{di}.identified[x]", min=1, types=of_type("dateTime")),
        el(f"{di}.evidence", min=1, max=1),
        el(f"{di}.evidence.detail", min=1, max=1, types=reference("Observation"), short="The diary summary"),
        el(f"{di}.detail", min=1, short="The class, its days in the month, the threshold and the run of months"),
    ]
