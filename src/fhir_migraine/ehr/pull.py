"""Pull a patient's resources of this project back from the EHR (every page of each search)."""

from __future__ import annotations

import re
from typing import Any

from fhir_migraine.ehr.interface import Searches
from fhir_migraine.errors import InputError, Problem
from fhir_migraine.identifiers import DIARY_SYSTEM, ORDER_STEP_SYSTEM, ORDER_SYSTEM, ORDER_WEIGHT_SYSTEM
from fhir_migraine.store import Store

# Each search asks for one identifier system of ours ("system|" matches any value in it).
SEARCHES = (
    ("MedicationRequest", "subject", ORDER_STEP_SYSTEM),
    ("RequestGroup", "subject", ORDER_SYSTEM),
    ("Observation", "subject", ORDER_WEIGHT_SYSTEM),
    ("Observation", "subject", DIARY_SYSTEM),
)
PAGE_SIZE = 200
_REFERENCE = re.compile(r"^(Patient/)?([A-Za-z0-9\-.]{1,64})$")


def patient_reference(text: str) -> str:
    """``Patient/123`` from ``Patient/123`` or ``123``; InputError otherwise."""
    match = _REFERENCE.match(text)
    if not match:
        raise InputError.of([Problem("$.patient", f"{text!r} is not a patient reference such as Patient/123")], "request")
    return f"Patient/{match.group(2)}"


def pull(client: Searches, patient: str, *, since: str | None = None) -> dict[str, Any]:
    """A searchset Bundle of the patient's resources of this project, changed since ``since``."""
    reference = patient_reference(patient)
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    searched_at: str | None = None
    for resource_type, parameter, system in SEARCHES:
        params = {parameter: reference, "identifier": f"{system}|", "_count": str(PAGE_SIZE)}
        if since:
            params["_lastUpdated"] = f"ge{since}"
        for page in client.search(resource_type, params):
            searched_at = searched_at or page.get("meta", {}).get("lastUpdated")
            for entry in page.get("entry", []) or []:
                resource = entry.get("resource") or {}
                key = f"{resource.get('resourceType')}/{resource.get('id')}"
                if key in seen:
                    continue
                seen.add(key)
                entries.append({"fullUrl": entry.get("fullUrl", key), "resource": resource, "search": {"mode": "match"}})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(entries), "entry": entries}
    if searched_at:
        bundle["meta"] = {"lastUpdated": searched_at}
    return bundle


class Cursors:
    """Per-patient pull cursors: the instant of the last pull, so the next fetches only changes."""

    def __init__(self, database: str) -> None:
        self._store = Store(database, "CREATE TABLE IF NOT EXISTS pull_cursors (patient TEXT PRIMARY KEY, since TEXT NOT NULL);")

    def get(self, patient: str) -> str | None:
        row = self._store.one("SELECT since FROM pull_cursors WHERE patient = ?", (patient,))
        return str(row[0]) if row else None

    def set(self, patient: str, since: str) -> None:
        self._store.write(
            "INSERT INTO pull_cursors (patient, since) VALUES (?, ?) ON CONFLICT(patient) DO UPDATE SET since = excluded.since",
            (patient, since),
        )

