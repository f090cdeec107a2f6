"""An EHR in memory for the write strategies' tests: it stores what it is sent, gives ids and
versions, and does only what its switches allow, with a CapabilityStatement that says the same
(so the writer chooses as it would against a real server):

- ``bundles``: the Bundle kinds it takes (``transaction``, ``batch``; none: one request per resource);
- ``conditional``: ``If-None-Exist`` honoured (otherwise ignored: a duplicate is created);
- ``identifier_search`` / ``patient_search``: the search parameters it offers;
- ``updatable``: the types it takes a ``PUT`` of (a refused one is a ``405``);
- ``creatable``: the types it takes a create of (None: all);
- ``minimal``: a write answers with no body, only the id and version (as a ``Location`` would).

``fail``: errors to raise, by call number (``calls`` counts every call), to stop it mid-sequence.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from fhir_migraine.ehr.contents import rewrite
from fhir_migraine.ehr.interface import Written
from fhir_migraine.ehr.writer import Writer
from fhir_migraine.errors import EhrError, EhrRejected, EhrUnsupported
from fhir_migraine.mapping.fhir import identifiers

Resource = dict[str, Any]
TYPES = ("Observation", "MedicationRequest", "RequestGroup", "DetectedIssue", "Patient", "MedicationAdministration",
         "QuestionnaireResponse", "MedicationStatement")


def _identifiers(resource: Resource) -> set[str]:
    return {f"{i.get('system')}|{i.get('value')}" for i in identifiers(resource) if isinstance(i, dict)}


def _unescaped(text: str) -> str:
    return text.replace("\\|", "|").replace("\\,", ",").replace("\\$", "$").replace("\\\\", "\\")


@dataclass
class MemoryEhr:
    bundles: tuple[str, ...] = ()
    conditional: bool = False
    identifier_search: bool = False
    patient_search: bool = True
    updatable: tuple[str, ...] = TYPES
    creatable: tuple[str, ...] | None = None
    minimal: bool = False
    fail: dict[int, EhrError] = field(default_factory=dict)
    base_url: str = "http://ehr.test/fhir"
    stored: dict[str, Resource] = field(default_factory=dict)  # "Type/id" -> resource
    calls: list[str] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # --- what the writer sees ---------------------------------------------------------------------

    def metadata(self) -> Resource:
        params = ["_id"] + (["identifier"] if self.identifier_search else []) + \
            (["patient", "subject", "request"] if self.patient_search else [])
        resources = []
        for kind in TYPES:
            interactions = ["read", "search-type"] + (["update"] if kind in self.updatable else [])
            if self.creatable is None or kind in self.creatable:
                interactions.append("create")
            resources.append({"type": kind, "interaction": [{"code": c} for c in interactions],
                              "conditionalCreate": self.conditional,
                              "searchParam": [{"name": p, "type": "token"} for p in params]})
        return {"resourceType": "CapabilityStatement",
                "rest": [{"mode": "server", "interaction": [{"code": b} for b in self.bundles], "resource": resources}]}

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Written:
        self._call(f"POST {resource['resourceType']}")
        if if_none_exist and self.conditional:
            found = self._by_identifier(resource["resourceType"], _unescaped(unquote(if_none_exist.split("=", 1)[1])))
            if len(found) > 1:
                raise EhrRejected("several match the condition", status=412)
            if found:
                return self._answer(200, found[0])
        return self._answer(201, self._store({**copy.deepcopy(resource), "id": str(next(self._ids))}, 1))

    def update(self, resource: Resource, *, if_match: str | None = None) -> Written:
        kind = resource["resourceType"]
        self._call(f"PUT {kind}/{resource['id']}")
        if kind not in self.updatable:
            raise EhrUnsupported(f"no update of {kind}", status=405)
        current = self.stored.get(f"{kind}/{resource['id']}")
        version = int(current["meta"]["versionId"]) if current else 0
        if if_match is not None and if_match != f'W/"{version}"':
            raise EhrRejected("version conflict", status=412)
        return self._answer(200 if current else 201, self._store(copy.deepcopy(resource), version + 1))

    def read(self, resource_type: str, resource_id: str) -> Written:
        self._call(f"GET {resource_type}/{resource_id}")
        found = self.stored.get(f"{resource_type}/{resource_id}")
        if found is None:
            raise EhrRejected("not found", status=404)
        return Written(200, resource_id, found["meta"]["versionId"], copy.deepcopy(found))

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[Resource]:
        self._call(f"SEARCH {resource_type}")
        found = [r for r in self.stored.values() if r["resourceType"] == resource_type]
        if "identifier" in params:
            if not self.identifier_search:
                raise EhrRejected("unknown search parameter identifier", status=400)
            wanted = _unescaped(params["identifier"])
            if wanted.endswith("|"):  # "system|": any value of the system (FHIR token search)
                found = [r for r in found if any(i.startswith(wanted) for i in _identifiers(r))]
            else:
                found = [r for r in found if wanted in _identifiers(r)]
        for key, elements in (("patient", ("subject", "patient")), ("subject", ("subject",)), ("request", ("request",))):
            if key in params:
                found = [r for r in found if any((r.get(e) or {}).get("reference") == params[key] for e in elements)]
        yield {"resourceType": "Bundle", "type": "searchset",
               "entry": [{"resource": copy.deepcopy(r), "search": {"mode": "match"}} for r in found]}

    def transaction(self, bundle: Resource) -> Resource:
        kind = bundle["type"]
        self._call(f"{kind.upper()} {len(bundle['entry'])}")
        if kind not in self.bundles:
            raise EhrUnsupported(f"no {kind}", status=405)
        refs: dict[str, str] = {}
        answers = []
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if kind == "transaction":  # a transaction resolves the references between its entries
                resource = rewrite(resource, refs)
            query = entry["request"].get("ifNoneExist")
            found = self._by_identifier(resource["resourceType"], _unescaped(unquote(query.split("=", 1)[1]))) \
                if query and self.conditional else []
            stored = found[0] if found else self._store({**copy.deepcopy(resource), "id": str(next(self._ids))}, 1)
            refs[entry["fullUrl"]] = f"{stored['resourceType']}/{stored['id']}"
            answers.append({"response": {"status": "200 OK" if found else "201 Created",
                                         "location": f"{refs[entry['fullUrl']]}/_history/{stored['meta']['versionId']}"}})
        return {"resourceType": "Bundle", "type": f"{kind}-response", "entry": answers}

    # --- for the tests ----------------------------------------------------------------------------

    def writer(self, known: Any = None, strategy: str = "auto") -> Writer:
        return Writer(self, lambda: _capabilities(self), known, strategy)

    def count(self, resource_type: str, identifier: str) -> int:
        return len(self._by_identifier(resource_type, identifier))

    def of_type(self, resource_type: str) -> list[Resource]:
        return [r for r in self.stored.values() if r["resourceType"] == resource_type]

    def _call(self, what: str) -> None:
        self.calls.append(what)
        error = self.fail.pop(len(self.calls), None)
        if error is not None:
            raise error

    def _by_identifier(self, resource_type: str, identifier: str) -> list[Resource]:
        return [r for r in self.stored.values() if r["resourceType"] == resource_type and identifier in _identifiers(r)]

    def _store(self, resource: Resource, version: int) -> Resource:
        resource["meta"] = {"versionId": str(version), "lastUpdated": "2026-12-02T10:00:00Z"}
        self.stored[f"{resource['resourceType']}/{resource['id']}"] = resource
        return resource

    def _answer(self, status: int, resource: Resource) -> Written:
        body = None if self.minimal else copy.deepcopy(resource)
        return Written(status, resource["id"], resource["meta"]["versionId"], body)


def _capabilities(ehr: MemoryEhr) -> Any:
    from fhir_migraine.ehr.capabilities import read_capabilities

    return read_capabilities(ehr.metadata())
