"""Differentials of the order profiles: the MedicationRequest of a step, its bag Medication, the
RequestGroup of an order, the PlanDefinition of a protocol, the body weight Observation and the
DetectedIssue of an order step.

Each function lists its rules in the order of the base resource's elements, as the snapshot
generators expect. Spec: https://hl7.org/fhir/R4/profiling.html
"""

from __future__ import annotations

from fhir_migraine import terminology
from fhir_migraine.identifiers import ORDER_ISSUE_SYSTEM, ORDER_STEP_SYSTEM, ORDER_SYSTEM
from fhir_migraine.inputs.protocols import STATUS_MIGRAINOSUS_CODES
from fhir_migraine.mapping.detected_issues import ACT_CODE
from fhir_migraine.mapping.fhir import DOSE_RATE_TYPE
from fhir_migraine.mapping.plandefinition import PLAN_TYPE, USAGE_CONTEXT_TYPE
from fhir_migraine.profiles.elements import (
    EXTENSIONS_BY_URL,
    Element,
    canonical_to,
    el,
    extension,
    invariant,
    of_type,
    reference,
    sd_url,
    sliced_by,
)
from fhir_migraine.terminology import Code

VITAL_SIGNS = "http://terminology.hl7.org/CodeSystem/observation-category"
BODY_WEIGHT = Code(terminology.LOINC, "29463-7", "Body weight")


def _business_identifier(resource: str, name: str, system: str) -> list[Element]:
    """``identifier`` 1..*, with exactly one of the given system (the conditional-create key)."""
    return [
        el(f"{resource}.identifier", min=1, slicing=sliced_by("value", "system")),
        el(f"{resource}.identifier:{name}", min=1, max=1),
        el(f"{resource}.identifier:{name}.system", min=1, fixed=("Uri", system)),
        el(f"{resource}.identifier:{name}.value", min=1),
    ]


def _dose_rate_type(code: str) -> dict[str, object]:
    return {"coding": [{"system": DOSE_RATE_TYPE, "code": code}]}


def infusion_request() -> list[Element]:
    mr = "MedicationRequest"
    dosage = f"{mr}.dosageInstruction"
    rxnorm, icd, snomed = terminology.RXNORM, terminology.ICD10CM, terminology.SNOMED
    return [
        el(mr, constraint=[
            invariant("mig-mr-1", "A bag (medicationReference) has a rate or a timing duration",
                      "medication.ofType(Reference).exists() implies dosageInstruction.all("
                      "doseAndRate.rate.exists() or timing.repeat.duration.exists())"),
            invariant("mig-mr-2", "A push or injection (medicationCodeableConcept) has a dose",
                      "medication.ofType(CodeableConcept).exists() implies dosageInstruction.all("
                      "doseAndRate.dose.exists())"),
            invariant("mig-mr-3", "A medication code has an RxNorm coding or a text",
                      f"medication.ofType(CodeableConcept).all(coding.where(system = '{rxnorm}').exists() "
                      "or text.exists())"),
        ]),
        *_business_identifier(mr, "orderStep", ORDER_STEP_SYSTEM),
        el(f"{mr}.status", min=1, short="draft (the default: signed in the EHR), or active when the site says so"),
        el(f"{mr}.intent", short="order, or the intent the site sends its orders with"),
        el(f"{mr}.medication[x]", min=1),
        el(f"{mr}.subject", min=1, types=reference("Patient")),
        el(f"{mr}.authoredOn", min=1),
        el(f"{mr}.requester", min=1),
        el(f"{mr}.reasonCode", constraint=[
            invariant("mig-mr-4", "A reason is coded in ICD-10-CM or SNOMED CT",
                      f"coding.where(system = '{icd}' or system = '{snomed}').exists()"),
        ]),
        el(f"{mr}.instantiatesCanonical", min=1, max=1, short="The protocol (PlanDefinition|version)"),
        el(f"{mr}.groupIdentifier", min=1, short="The order all steps belong to"),
        el(f"{mr}.groupIdentifier.system", min=1, fixed=("Uri", ORDER_SYSTEM)),
        el(f"{mr}.groupIdentifier.value", min=1),
        el(dosage, min=1, max=2, short="The step's dosage; two concurrent ones when its first dose differs"),
        el(f"{dosage}.sequence", min=1, short="1; with a first dose, 1 for it and 2 for the repeats"),
        el(f"{dosage}.text", min=1),
        el(f"{dosage}.timing", min=1),
        el(f"{dosage}.route", min=1, binding="migraine-infusion-route"),
        el(f"{dosage}.method", min=1, binding="migraine-administration-method"),
        el(f"{dosage}.doseAndRate", min=1, slicing=sliced_by("pattern", "type")),
        el(f"{dosage}.doseAndRate:ordered", min=1, max=1, short="The dose as ordered (per kg when so ordered); a "
                                                                 "bag: its one additive's dose, else its volume"),
        el(f"{dosage}.doseAndRate:ordered.type", min=1, pattern=("CodeableConcept", _dose_rate_type("ordered"))),
        el(f"{dosage}.doseAndRate:calculated", min=0, max=1, short="A per-kg dose calculated with the weight"),
        el(f"{dosage}.doseAndRate:calculated.type", min=1,
           pattern=("CodeableConcept", _dose_rate_type("calculated"))),
        el(f"{dosage}.maxDosePerPeriod", short="The step's declared limit per period (limits.per_period)",
           constraint=[invariant("mig-mr-5", "A limit per period is an amount in UCUM over a time in UCUM",
                                 _UCUM_AMOUNT.format("numerator") + " and " + _UCUM_TIME.format("denominator"))]),
        el(f"{dosage}.maxDosePerAdministration", short="The step's declared limit per administration "
           "(limits.per_administration)"),
        el(f"{mr}.detectedIssue", types=reference("DetectedIssue"),
           short="A rate beyond the label, or approved off-label use, of this step"),
    ]


_UCUM_AMOUNT = f"{{0}}.value.exists() and {{0}}.system = '{terminology.UCUM}' and {{0}}.code.exists()"
_UCUM_TIME = ("{0}.value.exists() and " + f"{{0}}.system = '{terminology.UCUM}' and " + "("
              + " or ".join(f"{{0}}.code = '{unit}'" for unit in ("s", "min", "h", "d", "wk", "mo")) + ")")


def detected_issue() -> list[Element]:
    di = "DetectedIssue"
    return [
        el(di, short="A finding about one step of an order: a rate beyond the label, or approved off-label use"),
        *_business_identifier(di, "orderIssue", ORDER_ISSUE_SYSTEM),
        el(f"{di}.status", fixed=("Code", "final")),
        el(f"{di}.code", min=1, constraint=[
            invariant("mig-di-1", "The kind of issue is coded in HL7 v3 ActCode",
                      f"coding.where(system = '{ACT_CODE}').exists()"),
        ]),
        el(f"{di}.severity", min=1),
        el(f"{di}.patient", min=1, types=reference("Patient")),
        el(f"{di}.identified[x]", min=1, types=of_type("dateTime")),
        el(f"{di}.implicated", min=1, max=1, types=reference("MedicationRequest"),
           short="The step's MedicationRequest"),
        el(f"{di}.detail", min=1, short="What was found, naming the order's value and the label's limit"),
    ]


def bag_medication() -> list[Element]:
    return [
        el("Medication", short="An infusion bag: base fluid and additives"),
        el("Medication.amount", min=1, short="The bag volume per bag"),
        el("Medication.ingredient", min=1),
        el("Medication.ingredient.extension", slicing=EXTENSIONS_BY_URL),
        el("Medication.ingredient.extension:orderedDose", min=0, max=1, types=extension("ordered-dose")),
        el("Medication.ingredient.extension:doseCeiling", min=0, max=1, types=extension("dose-ceiling")),
        el("Medication.ingredient.item[x]", types=of_type("CodeableConcept")),
    ]


def infusion_group() -> list[Element]:
    rg = "RequestGroup"
    return [
        el(rg),
        el(f"{rg}.extension", slicing=EXTENSIONS_BY_URL),
        el(f"{rg}.extension:minimumSessionDuration", min=0, max=1, types=extension("minimum-session-duration")),
        *_business_identifier(rg, "order", ORDER_SYSTEM),
        el(f"{rg}.status", min=1, short="The status of its MedicationRequests"),
        el(f"{rg}.intent", short="The intent of its MedicationRequests"),
        el(f"{rg}.subject", min=1, types=reference("Patient")),
        el(f"{rg}.authoredOn", min=1),
        el(f"{rg}.author", min=1),
        el(f"{rg}.action", min=1, short="One action per MedicationRequest, in protocol order"),
        el(f"{rg}.action.prefix", min=1, short="The step's sequence number"),
        el(f"{rg}.action.resource", min=1, types=reference("MedicationRequest")),
    ]


def infusion_protocol() -> list[Element]:
    pd = "PlanDefinition"
    order_set = {"coding": [{"system": PLAN_TYPE, "code": "order-set"}]}
    icd = terminology.ICD10CM
    with_status = " or ".join(f"code = '{code}'" for code in STATUS_MIGRAINOSUS_CODES)
    return [
        el(pd, constraint=[
            # ICD-10-CM G43.xx1: "with status migrainosus" (CDC/NCHS tabular; docs/mapping.md).
            invariant("mig-pd-1", "A status-migrainosus protocol is indicated for migraine with status migrainosus",
                      f"useContext.value.ofType(CodeableConcept).coding.where(system = '{terminology.INFUSION_CS}' "
                      "and code = 'status-migrainosus').exists() implies action.reason.coding.where("
                      f"system = '{icd}' and ({with_status})).exists()"),
        ]),
        el(f"{pd}.extension", slicing=EXTENSIONS_BY_URL),
        el(f"{pd}.extension:minimumSessionDuration", min=0, max=1, types=extension("minimum-session-duration")),
        el(f"{pd}.url", min=1),
        el(f"{pd}.version", min=1),
        el(f"{pd}.name", min=1),
        el(f"{pd}.type", min=1, pattern=("CodeableConcept", order_set)),
        el(f"{pd}.useContext", min=1, slicing=sliced_by("pattern", "code")),
        el(f"{pd}.useContext:intent", min=1, max=1, short="What the protocol is for"),
        el(f"{pd}.useContext:intent.code", pattern=("Coding", {"system": USAGE_CONTEXT_TYPE, "code": "focus"})),
        el(f"{pd}.useContext:intent.value[x]", types=of_type("CodeableConcept"), binding="migraine-protocol-intent"),
        el(f"{pd}.action", min=1, short="One action per step, in order of administration"),
        el(f"{pd}.action.definition[x]", min=1, types=canonical_to("ActivityDefinition")),
    ]


def order_weight() -> list[Element]:
    """The weight contained in each MedicationRequest (no category), or charted as a vital sign when
    the site asks for it (category vital-signs, the only category allowed)."""
    obs = "Observation"
    vital_signs = {"coding": [{"system": VITAL_SIGNS, "code": "vital-signs"}]}
    body_weight = {"coding": [{"system": BODY_WEIGHT.system, "code": BODY_WEIGHT.code}]}
    return [
        el(obs, short="The body weight per-kg doses were calculated with"),
        el(f"{obs}.status", min=1),
        el(f"{obs}.category", slicing=sliced_by("pattern", "$this", rules="closed"),
           short="None when it travels with the order; vital-signs when also charted"),
        el(f"{obs}.category:vitalSigns", min=0, max=1, pattern=("CodeableConcept", vital_signs)),
        el(f"{obs}.code", pattern=("CodeableConcept", body_weight),
           short="LOINC 29463-7, with 3141-9 (measured) or 3142-7 (stated) when the order says"),
        el(f"{obs}.subject", min=1, types=reference("Patient")),
        el(f"{obs}.effective[x]", types=of_type("dateTime"), short="When the weight was measured or stated"),
        el(f"{obs}.value[x]", min=1, types=of_type("Quantity")),
        el(f"{obs}.value[x].value", min=1),
        el(f"{obs}.value[x].system", min=1, fixed=("Uri", terminology.UCUM)),
        el(f"{obs}.value[x].code", min=1, binding="migraine-body-weight-units"),
    ]


def minimum_session_duration() -> list[Element]:
    return _extension_elements("minimum-session-duration", "Duration",
                               "The shortest time a whole infusion session may take")


def ordered_dose() -> list[Element]:
    return _extension_elements("ordered-dose", "Quantity",
                               "The per-kg dose an additive's amount was calculated from")


def dose_ceiling() -> list[Element]:
    return _extension_elements("dose-ceiling", "Quantity",
                               "The highest dose a prescriber may order for a protocol step or additive")


def _extension_elements(extension_id: str, value_type: str, short: str) -> list[Element]:
    return [
        el("Extension", short=short, definition=f"{short}.", max=1),
        el("Extension.extension", max=0),
        el("Extension.url", fixed=("Uri", sd_url(extension_id))),
        el("Extension.value[x]", min=1, types=of_type(value_type)),
    ]
