"""Reading an EHR's CapabilityStatement: the write strategy, the writes it lacks, the search
parameters it offers, and the cache that keeps it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from fhir_migraine.ehr.capabilities import CapabilityCache, read_capabilities
from fhir_migraine.errors import EhrUnsupported

DATA = Path(__file__).parent.parent / "data" / "capabilities"


def statement(name: str) -> dict[str, Any]:
    return json.loads((DATA / f"{name}.json").read_text(encoding="utf-8"))


def hapi_like(**system: bool) -> dict[str, Any]:
    types = [{"type": t, "interaction": [{"code": c} for c in ("read", "create", "update", "search-type")],
              "conditionalCreate": True} for t in ("Observation", "MedicationRequest", "RequestGroup", "Patient")]
    rest: dict[str, Any] = {"mode": "server", "resource": types,
                            "interaction": [{"code": code} for code, on in system.items() if on]}
    return {"resourceType": "CapabilityStatement", "rest": [rest]}


def test_epic_like_statement_needs_one_request_per_resource_and_cannot_take_orders() -> None:
    caps = read_capabilities(statement("epic-like"))
    assert caps.strategy() == "per-resource"
    assert caps.missing_writes(["Observation", "MedicationRequest", "RequestGroup"]) == [
        "create MedicationRequest", "create RequestGroup"]
    assert caps.missing_writes(["Observation"], update=True) == []
    assert not caps.conditional_create("Observation")
    assert caps.patient_param("Observation") == "patient"
    assert not caps.searches("Observation", "identifier")
    assert caps.searches("Patient", "identifier")


def test_oracle_like_statement_has_patient_but_no_subject_and_no_identifier_search() -> None:
    caps = read_capabilities(statement("oracle-like"))
    assert caps.strategy() == "per-resource"
    assert caps.patient_param("MedicationRequest") == "patient"
    assert not caps.searches("MedicationRequest", "subject")
    assert not caps.searches("Observation", "identifier")
    assert caps.searches("Observation", "_lastUpdated")
    assert caps.missing_writes(["RequestGroup"]) == ["create RequestGroup"]


@pytest.mark.parametrize(("system", "strategy"), [
    ({"transaction": True, "batch": True}, "transaction"),
    ({"batch": True}, "batch"),
    ({}, "per-resource"),
])
def test_strategy_is_the_best_bundle_kind_advertised(system: dict[str, bool], strategy: str) -> None:
    assert read_capabilities(hapi_like(**system)).strategy() == strategy


def test_a_type_listed_without_search_params_offers_the_standard_ones() -> None:
    caps = read_capabilities(hapi_like())
    assert caps.conditional_create("Observation")
    assert caps.patient_param("Observation") == "patient"
    assert caps.searches("Observation", "identifier") and caps.searches("Observation", "_lastUpdated")
    assert not caps.can("Device", "create")  # not listed: not allowed


@pytest.mark.parametrize("bad", [{}, {"resourceType": "Patient"}, {"resourceType": "CapabilityStatement"},
                                 {"resourceType": "CapabilityStatement", "rest": [{"mode": "client"}]}, []])
def test_what_is_not_a_server_statement_is_refused(bad: Any) -> None:
    with pytest.raises(EhrUnsupported):
        read_capabilities(bad)


def test_cache_reads_once_then_again_after_its_time_and_on_refresh() -> None:
    now = [0.0]
    asked: list[int] = []

    def fetch() -> dict[str, Any]:
        asked.append(1)
        return hapi_like(transaction=len(asked) == 1)

    cache = CapabilityCache(fetch, ttl=60, clock=lambda: now[0])
    assert cache.last() is None
    first = cache.get()
    assert first.strategy() == "transaction" and cache.get() is first and len(asked) == 1
    now[0] = 61
    changed = cache.get()
    assert changed.strategy() == "per-resource" and changed.digest != first.digest and len(asked) == 2
    cache.refresh()
    assert len(asked) == 3 and cache.last() is not None
