"""The whole package as data: StructureDefinitions, ValueSets, CodeSystems, package.json and
one example per profile, then the two edges that write it (a folder, a ``.tgz``).

Everything but ``read_sources``, ``write`` and ``write_package`` is a pure function.
Package layout: https://confluence.hl7.org/display/FHIR/NPM+Package+Specification
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.documents import dumps
from fhir_migraine.mapping.plandefinition import to_fhir_plan_definition
from fhir_migraine.profiles import codes, diary_profiles, order_profiles, questionnaires, report_profiles
from fhir_migraine.profiles.elements import CANONICAL, CORE, Element, sd_url

Resource = dict[str, Any]

PACKAGE_NAME = "fhir-migraine.profiles"
FHIR_VERSION = "4.0.1"
# Where the examples come from, relative to the project folder.
EXAMPLE_ORDERS = "examples/orders"
EXAMPLE_PROTOCOLS = "examples/protocols"
EXAMPLE_DIARY = "examples/diary/month.json"
EXAMPLE_OVERUSE = "examples/diary/overuse.json"
EXAMPLE_REPORT_MONTH = "2026-11"
EXAMPLE_REPORT_MADE = "2026-12-01T00:00:00+00:00"
EXAMPLE_PROTOCOL = "preventive-nutrient"
PUBLISHED = "profiles"
SHIPPED_PACKAGE = "src/fhir_migraine/data/fhir-package"
SHIPPED_PROTOCOLS = "src/fhir_migraine/data/protocols"
# Fixed time stamp of every member of the .tgz (2026-01-15T00:00:00Z), for identical bytes.
PACKAGE_MTIME = 1768435200


@dataclass(frozen=True)
class ProfileSpec:
    id: str
    type: str
    title: str
    description: str
    elements: Callable[[], list[Element]]


PROFILES = (
    ProfileSpec("migraine-infusion-request", "MedicationRequest", "Migraine infusion request",
                "One step of an IV migraine infusion order: a bag (contained Medication) or a push or "
                "injection, part of an order (groupIdentifier) made from a protocol (instantiatesCanonical).",
                order_profiles.infusion_request),
    ProfileSpec("migraine-bag-medication", "Medication", "Migraine infusion bag",
                "An infusion bag, contained in its MedicationRequest: the base fluid and the additives as "
                "ingredients, the bag volume as amount.", order_profiles.bag_medication),
    ProfileSpec("migraine-infusion-group", "RequestGroup", "Migraine infusion order",
                "The MedicationRequests of one order, in the order of the protocol.", order_profiles.infusion_group),
    ProfileSpec("migraine-infusion-protocol", "PlanDefinition", "Migraine infusion protocol",
                "An infusion protocol as an order set: one action per step, each defined by a contained "
                "ActivityDefinition.", order_profiles.infusion_protocol),
    ProfileSpec("migraine-order-weight", "Observation", "Body weight of an order",
                "The body weight per-kg doses of an order were calculated with.", order_profiles.order_weight),
    ProfileSpec("migraine-detected-issue", "DetectedIssue", "Finding about an order step",
                "A delivery faster than the drug's label allows, or an approved off-label regimen, of one "
                "step of an order, implicating its MedicationRequest.", order_profiles.detected_issue),
    ProfileSpec("diary-day", "Observation", "Headache diary day",
                "One day of the headache diary: headache or not, notes, and the day's other Observations.",
                diary_profiles.diary_day),
    ProfileSpec("diary-attack", "Observation", "Headache attack",
                "A headache attack recorded in the diary: when, how strong, its features, symptoms, aura, "
                "triggers and disability.", diary_profiles.diary_attack),
    ProfileSpec("diary-medication-statement", "MedicationStatement", "Acute medication taken",
                "An acute medication the patient took, as recorded in the diary: the drug, when, its dose and "
                "route, and the attack it was taken for.", diary_profiles.diary_medication_statement),
    ProfileSpec("diary-medication-outcome", "Observation", "Acute treatment outcome at 2 hours",
                "How an acute medication worked 2 hours after it was taken (relief, pain on the 4-point scale, "
                "pain freedom, most bothersome symptom freedom), rescue medication and recurrence within 48 "
                "hours, as the IHS guidelines for acute-treatment trials define them.",
                diary_profiles.diary_medication_outcome),
    ProfileSpec("diary-oral-intake", "Observation", "Oral hydration",
                "A hydration or electrolyte drink recorded in the diary.", diary_profiles.diary_oral_intake),
    ProfileSpec("diary-infusion-received", "Observation", "Infusion received",
                "An infusion the patient received, as recorded in the diary.", diary_profiles.diary_infusion_received),
    ProfileSpec("diary-menstruation", "Observation", "Menstruation",
                "Whether the patient was menstruating on a diary day: the days the menstrual association is "
                "read from (ICHD-3 A1.1.2).", diary_profiles.diary_menstruation),
    ProfileSpec("diary-questionnaire-response", "QuestionnaireResponse", "Diary questionnaire answers",
                "The patient's answers to MIDAS or HIT-6 recorded with a diary entry, one item per question.",
                diary_profiles.diary_questionnaire_response),
    ProfileSpec("diary-midas-score", "Observation", "MIDAS score",
                "The MIDAS score of a diary entry's answers (the sum of questions 1 to 5) and its grade, derived "
                "from the QuestionnaireResponse.", diary_profiles.diary_midas_score),
    ProfileSpec("diary-hit6-score", "Observation", "HIT-6 score",
                "The HIT-6 score of a diary entry's answers (36 to 78) and its impact band, derived from the "
                "QuestionnaireResponse.", diary_profiles.diary_hit6_score),
    ProfileSpec("diary-summary", "Observation", "Headache diary summary",
                "A patient's headache diary over a period: headache, migraine and acute-medication days, days "
                "by medication class, attacks, the longest attack and the chronic pattern (ICHD-3 1.3).",
                diary_profiles.diary_summary),
    ProfileSpec("diary-overuse-risk", "DetectedIssue", "Medication-overuse risk",
                "A class of acute medication taken on as many days a month as ICHD-3 8.2 counts towards "
                "medication-overuse headache, with the diary summary as evidence.", diary_profiles.diary_overuse_risk),
    ProfileSpec("diary-report", "DocumentReference", "Headache diary report",
                "A month of a patient's headache diary (calendar, figures, medication-overuse flags, infusions, "
                "MIDAS and HIT-6) as a PDF and HTML document filed in the chart.", report_profiles.diary_report),
)


@dataclass(frozen=True)
class ExtensionSpec:
    id: str
    title: str
    description: str
    contexts: tuple[str, ...]
    elements: Callable[[], list[Element]]


EXTENSIONS = (
    ExtensionSpec("minimum-session-duration", "Minimum session duration",
                  "The shortest time a whole infusion session may take (for example 35 minutes for a nutrient "
                  "infusion).", ("RequestGroup", "PlanDefinition"), order_profiles.minimum_session_duration),
    ExtensionSpec("ordered-dose", "Ordered dose",
                  "The dose of an additive as ordered per body weight (mg/kg); the ingredient's strength holds "
                  "the amount calculated from it. R4 has no element for it.", ("Medication.ingredient",),
                  order_profiles.ordered_dose),
    ExtensionSpec("dose-ceiling", "Dose ceiling",
                  "The highest dose a prescriber may order for a protocol step or additive (an override above "
                  "it is refused; a per-kg dose above it is capped at it). Not a clinical maximum: "
                  "Dosage.maxDosePerAdministration is kept for the limits the protocol declares as such.",
                  ("Dosage", "Medication.ingredient"), order_profiles.dose_ceiling),
)


def structure_definition(spec: ProfileSpec) -> Resource:
    resource = codes.common("StructureDefinition", spec.id, spec.title, spec.description)
    resource.update(
        fhirVersion=FHIR_VERSION,
        kind="resource",
        abstract=False,
        type=spec.type,
        baseDefinition=f"{CORE}/{spec.type}",
        derivation="constraint",
        differential={"element": spec.elements()},
    )
    return resource


def extension_definition(spec: ExtensionSpec) -> Resource:
    resource = codes.common("StructureDefinition", spec.id, spec.title, spec.description)
    resource.update(
        fhirVersion=FHIR_VERSION,
        kind="complex-type",
        abstract=False,
        context=[{"type": "element", "expression": where} for where in spec.contexts],
        type="Extension",
        baseDefinition=f"{CORE}/Extension",
        derivation="constraint",
        differential={"element": spec.elements()},
    )
    return resource


def conformance_resources() -> list[Resource]:
    """Every StructureDefinition, ValueSet and CodeSystem of the package."""
    return [
        *(structure_definition(spec) for spec in PROFILES),
        *(extension_definition(spec) for spec in EXTENSIONS),
        *codes.value_sets(),
        *codes.code_systems(),
        *questionnaires.questionnaires(),
    ]


def package_manifest() -> Resource:
    return {
        "name": PACKAGE_NAME,
        "version": codes.VERSION,
        "type": "fhir.ig",
        "canonical": CANONICAL,
        "title": "fhir-migraine profiles",
        "description": "Profiles, extensions, value sets and code systems for IV migraine infusion orders "
        "and headache diaries in FHIR R4.",
        "fhirVersions": [FHIR_VERSION],
        "dependencies": {"hl7.fhir.r4.core": FHIR_VERSION},
        "author": codes.PUBLISHER,
        "license": "Apache-2.0",
    }


# --- Examples --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sources:
    """The golden outputs the examples are taken from: Bundles by name, and a PlanDefinition."""

    bundles: dict[str, Resource]
    plan_definition: Resource


def read_sources(root: Path) -> Sources:
    """The golden outputs of a project folder's example inputs (the I/O edge).

    They are made by the mappings from ``examples/orders``, ``examples/protocols`` and
    ``examples/diary/month.json``, which is what the golden Bundles in ``examples/`` hold
    (tests/golden compares them); so the examples follow the code tables even while a golden
    file waits to be regenerated. The pure mapping functions are called directly: the
    operations check their output against the package on disk, which is what is being rebuilt.
    """
    from fhir_migraine import library  # the edge: files, and the protocol library
    from fhir_migraine.inputs import orders
    from fhir_migraine.inputs.diary_files import iter_entries
    from fhir_migraine.mapping import diary as diary_map
    from fhir_migraine.mapping import orders as orders_map
    from fhir_migraine.mapping.fhir import transaction
    from fhir_migraine.mapping.summary_fhir import to_fhir_summary
    from fhir_migraine.operations import diary_summary, load_diary

    protocols = library.read_protocols(root / EXAMPLE_PROTOCOLS)
    bundles: dict[str, Resource] = {}
    for path in sorted((root / EXAMPLE_ORDERS).glob("*.json")):
        order = orders.load(json.loads(path.read_text(encoding="utf-8")), orders.finder(protocols))
        bundles[f"{path.stem}.bundle.json"] = orders_map.to_fhir_bundle(order, now=_no_clock())
    with open(root / EXAMPLE_DIARY, encoding="utf-8") as diary:
        month = load_diary(iter_entries(diary, "json"))
    bundles["month.bundle.json"] = diary_map.to_fhir_bundle(month)
    # The summaries (what `map diary --summary` adds): of the month, and of a diary with a risk.
    with open(root / EXAMPLE_OVERUSE, encoding="utf-8") as diary:
        overuse = load_diary(iter_entries(diary, "json"))
    for name, entries in (("month", month), ("overuse", overuse)):
        bundles[f"{name}.summary.bundle.json"] = transaction(to_fhir_summary(diary_summary(entries)))
    bundles["month.report.bundle.json"] = transaction([_example_report(month)])
    plan = to_fhir_plan_definition(protocols[EXAMPLE_PROTOCOL])
    return Sources(bundles, plan)


def _example_report(entries: list[Any]) -> Resource:
    """The report of the example month, made as the month ended (so a rebuild is identical)."""
    from fhir_migraine.mapping.report_document import to_fhir_report
    from fhir_migraine.report import render
    from fhir_migraine.report.month import month_of, month_view

    made = datetime.fromisoformat(EXAMPLE_REPORT_MADE)
    view = month_view(entries, [], month_of(EXAMPLE_REPORT_MONTH, made.date()), made_at=made)
    page = render.html(view)
    return to_fhir_report(view, render.pdf(page), page)


def _no_clock() -> str:
    # The example orders give their 'authored' time; this only keeps a rebuild identical if one does not.
    return f"{codes.RELEASE_DATE}T00:00:00Z"


def profile_of(resource: Resource) -> str | None:
    """Which of the package's profiles a resource the mappings wrote falls under."""
    kind = resource.get("resourceType")
    coding = resource.get("code", {}).get("coding", [{}])[0]
    risk = terminology.observation_code("overuse_risk")
    if kind == "DetectedIssue" and (coding.get("system"), coding.get("code")) == (risk.system, risk.code):
        return "diary-overuse-risk"
    fixed = {
        "QuestionnaireResponse": "diary-questionnaire-response",
        "MedicationStatement": "diary-medication-statement",
        "MedicationRequest": "migraine-infusion-request",
        "Medication": "migraine-bag-medication",
        "RequestGroup": "migraine-infusion-group",
        "PlanDefinition": "migraine-infusion-protocol",
        "DetectedIssue": "migraine-detected-issue",
    }
    if kind == "DocumentReference":
        return "diary-report"
    if kind in fixed:
        return fixed[kind]
    if kind != "Observation":
        return None
    summary = terminology.observation_code("diary_summary")
    if (coding.get("system"), coding.get("code")) == (summary.system, summary.code):
        return "diary-summary"
    if (coding.get("system"), coding.get("code")) == (order_profiles.BODY_WEIGHT.system, order_profiles.BODY_WEIGHT.code):
        return "migraine-order-weight"
    for obs_kind, profile_id in diary_profiles.PROFILE_OF_KIND.items():
        code = terminology.observation_code(obs_kind)
        if (coding.get("system"), coding.get("code")) == (code.system, code.code):
            return profile_id
    return None


def _candidates(sources: Sources) -> Iterator[Resource]:
    """Every resource of the golden outputs, contained ones included, in file and entry order."""
    tops = [e["resource"] for _, b in sorted(sources.bundles.items()) for e in b.get("entry", [])]
    for resource in [*tops, sources.plan_definition]:
        yield resource
        yield from resource.get("contained", [])


def _paths(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in {f"{prefix}.{k}"} | _paths(v, f"{prefix}.{k}")}
    if isinstance(value, list):
        return {p for item in value for p in _paths(item, prefix)}
    return set()


def _richness(resource: Resource) -> tuple[int, int, int]:
    """How much of a profile an example shows: top-level elements, distinct paths, then size."""
    return len(resource), len(_paths(resource)), len(json.dumps(resource))


def example(resource: Resource, profile_id: str) -> Resource:
    """A golden resource as a stand-alone example: an id, and its profile in ``meta.profile``."""
    body = {k: copy.deepcopy(v) for k, v in resource.items() if k not in ("resourceType", "id", "meta")}
    meta = copy.deepcopy(resource.get("meta", {}))
    meta["profile"] = [sd_url(profile_id)]
    return {"resourceType": resource["resourceType"], "id": f"{profile_id}-example", "meta": meta, **body}


def examples(sources: Sources) -> list[Resource]:
    """One example per profile: the richest resource of the golden outputs it applies to."""
    best: dict[str, Resource] = {}
    for resource in _candidates(sources):
        profile_id = profile_of(resource)
        if profile_id is not None and (profile_id not in best or _richness(resource) > _richness(best[profile_id])):
            best[profile_id] = resource
    missing = [spec.id for spec in PROFILES if spec.id not in best]
    if missing:
        raise ValueError(f"the golden outputs have no resource for the profiles {missing}")
    return [example(best[spec.id], spec.id) for spec in PROFILES]


# --- Files -----------------------------------------------------------------------------------


def files(sources: Sources) -> dict[str, str]:
    """The package as ``{relative path: text}``, sorted by path."""
    found = {"package.json": dumps(package_manifest())}
    for resource in conformance_resources():
        found[f"{resource['resourceType']}-{resource['id']}.json"] = dumps(resource)
    for resource in examples(sources):
        found[f"examples/{resource['resourceType']}-{resource['id']}.json"] = dumps(resource)
    return dict(sorted(found.items()))


def tgz(package_files: dict[str, str]) -> bytes:
    """A FHIR package: every file under ``package/``, sorted, fixed time stamps and owners."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for name in sorted(package_files):
            data = package_files[name].encode("utf-8")
            info = tarfile.TarInfo(f"package/{name}")
            info.size, info.mtime, info.mode = len(data), PACKAGE_MTIME, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            tar.addfile(info, io.BytesIO(data))
    zipped = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=zipped, mtime=PACKAGE_MTIME) as gz:
        gz.write(raw.getvalue())
    return zipped.getvalue()


def package_file_name() -> str:
    return f"{PACKAGE_NAME}-{codes.VERSION}.tgz"


def write(folder: Path, sources: Sources) -> list[Path]:
    """Write the package into ``folder`` (``profiles/``), removing generated files it no longer has."""
    wanted = files(sources)
    for old in [*folder.glob("*.json"), *folder.glob("examples/*.json")]:
        if old.relative_to(folder).as_posix() not in wanted:
            old.unlink()
    written = []
    for name, text in wanted.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def write_all(root: Path, sources: Sources) -> list[Path]:
    """Everything the build keeps in a project folder: ``profiles/`` (the published package), its
    copy shipped inside the Python package, and the shipped copy of the example protocols (the
    seed of the service's library); the tests compare each copy with its original."""
    written = write(root / PUBLISHED, sources)
    written += write(root / SHIPPED_PACKAGE, sources)
    shipped_protocols = root / SHIPPED_PROTOCOLS
    shipped_protocols.mkdir(parents=True, exist_ok=True)
    originals = {p.name: p for p in (root / EXAMPLE_PROTOCOLS).iterdir() if p.suffix in (".yaml", ".yml", ".json")}
    for old in shipped_protocols.iterdir():
        if old.is_file() and old.name not in originals:
            old.unlink()
    for name, original in sorted(originals.items()):
        copy_path = shipped_protocols / name
        copy_path.write_bytes(original.read_bytes())
        written.append(copy_path)
    return written
