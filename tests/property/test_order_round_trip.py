"""Generated protocols and orders: each maps to FHIR that parses, and unmaps to the same order."""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B.bundle import Bundle
from hypothesis import HealthCheck, given, settings

from fhir_migraine import operations
from fhir_migraine.inputs import protocols
from tests.conftest import examples
from tests.strategies import protocol_and_order


def _now() -> str:
    return "2026-01-01T00:00:00Z"


@settings(max_examples=examples(250), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(protocol_and_order())
def test_generated_orders_map_to_fhir_and_back(case: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]) -> None:
    document, order, expected = case
    protocol = protocols.load(document)
    find = {protocol.id: protocol}.get

    bundle = operations.map_order(order, find, now=_now)
    Bundle.model_validate(bundle)
    assert operations.map_order(order, find, now=_now) == bundle, "mapping twice differs"

    assert operations.unmap(bundle, find)["orders"] == [expected]

    # The full form (every dose explicit) maps back to the very same resources.
    full = operations.unmap(bundle)["orders"]
    assert len(full) == 1
    assert operations.map_order(full[0], find, now=_now) == bundle
