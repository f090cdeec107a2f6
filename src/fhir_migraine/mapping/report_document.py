"""A month's diary report (``report``) as a DocumentReference filed in the patient's chart.

R4 DocumentReference (https://hl7.org/fhir/R4/documentreference.html): ``status`` current,
``docStatus`` final, ``type`` and ``category`` LOINC 53576-5 "Personal health monitoring report
Document" (a member of the R4 ValueSet document-classcodes,
http://hl7.org/fhir/ValueSet/document-classcodes, and a LOINC document-scale code as the US Core
type binding asks), ``subject`` the patient, ``date`` when it was made, ``author`` the project as a
contained Device (an EHR that takes DocumentReference need not take Device), ``context.period``
the month, ``relatesTo`` ``replaces`` the report of the same month filed before, and two
attachments: the PDF and the same content as HTML.

The identifier is made from the patient, the month and the report's content without the time it
was made, so asking twice for the same report files it once (the writer's conditional create
finds the first), and a report made again from changed data is a new document that replaces the
one before.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from fhir_migraine import __version__, terminology
from fhir_migraine.identifiers import REPORT_SYSTEM
from fhir_migraine.mapping.fhir import Resource, identifier, profile, subject
from fhir_migraine.mapping.narrative import with_text

DOCUMENT_TYPE = {"system": terminology.LOINC, "code": "53576-5", "display": "Personal health monitoring report Document"}
MAKER_ID = "maker"


def report_value(view: dict[str, Any]) -> str:
    """``<month>/<digest>``: the identifier value of the month's report of this content."""
    content = {k: v for k, v in view.items() if k != "provenance"}
    content["provenance"] = {k: v for k, v in view["provenance"].items() if k != "made_at"}
    digest = hashlib.sha256(json.dumps(content, sort_keys=True, ensure_ascii=False).encode()).hexdigest()[:24]
    return f"{view['month']}/{digest}"


def maker() -> Resource:
    """The project, as the Device that made the report (contained)."""
    return with_text({
        "resourceType": "Device",
        "id": MAKER_ID,
        "deviceName": [{"name": "fhir-migraine", "type": "manufacturer-name"}],
        "version": [{"value": __version__}],
    })


def to_fhir_report(view: dict[str, Any], pdf: bytes, page: str, *, replaces: str | None = None) -> Resource:
    """The DocumentReference of a month's report: ``pdf`` and ``page`` (its HTML) attached;
    ``replaces`` the reference of the report of the same month it takes the place of."""
    made = view["provenance"]["made_at"]
    title = f"Headache diary report, {view['month_name']}"
    document: Resource = {
        "resourceType": "DocumentReference",
        "meta": profile("diary-report"),
        "contained": [maker()],
        "identifier": [identifier(REPORT_SYSTEM, report_value(view))],
        "status": "current",
        "docStatus": "final",
        "type": {"coding": [DOCUMENT_TYPE], "text": "Headache diary report"},
        "category": [{"coding": [DOCUMENT_TYPE]}],
        "subject": subject(view["patient"]),
        "date": made,
        "author": [{"reference": f"#{MAKER_ID}", "display": f"fhir-migraine {__version__}"}],
        "description": title,
    }
    if replaces is not None:
        document["relatesTo"] = [{"code": "replaces", "target": {"reference": replaces}}]
    document["content"] = [
        {"attachment": _attachment("application/pdf", pdf, title, made)},
        {"attachment": _attachment("text/html", page.encode("utf-8"), title, made)},
    ]
    document["context"] = {"period": {"start": view["from"], "end": view["to"]}}
    return with_text(document)


def _attachment(content_type: str, data: bytes, title: str, made: str) -> dict[str, Any]:
    return {
        "contentType": content_type,
        "language": "en",
        "data": base64.b64encode(data).decode("ascii"),
        "size": len(data),
        "hash": base64.b64encode(hashlib.sha1(data).digest()).decode("ascii"),  # R4: "Hash of the data (sha-1, base64ed)"
        "title": title,
        "creation": made,
    }


def reports_in(bundle: Resource) -> list[dict[str, Any]]:
    """The monthly reports of a pulled searchset, newest first: each one's reference in the EHR,
    its month and identifier value, when it was made, its status and what it replaces."""
    found = []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource") or {}
        if resource.get("resourceType") != "DocumentReference":
            continue
        value = next((i.get("value") for i in resource.get("identifier", [])
                      if isinstance(i, dict) and i.get("system") == REPORT_SYSTEM), None)
        if not isinstance(value, str) or "/" not in value:
            continue
        found.append({
            "reference": f"DocumentReference/{resource.get('id')}",
            "month": value.split("/")[0],
            "identifier": value,
            "date": resource.get("date"),
            "status": resource.get("status"),
            "replaces": [r.get("target", {}).get("reference") for r in resource.get("relatesTo", [])
                         if r.get("code") == "replaces"],
        })
    return sorted(found, key=lambda r: str(r["date"]), reverse=True)
