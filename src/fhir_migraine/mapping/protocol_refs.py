"""What every resource of an order, and the protocol's PlanDefinition, say about the protocol."""

from __future__ import annotations

from typing import Any

from fhir_migraine.inputs.protocols import Protocol
from fhir_migraine.mapping.fhir import MIN_SESSION_EXT, concept


def canonical(protocol: Protocol) -> str:
    return f"{protocol.canonical}|{protocol.version}"


def reason(protocol: Protocol) -> list[dict[str, Any]]:
    if protocol.indication is None:
        return []
    return [concept(protocol.indication, protocol.indication.display)]


def min_session_extension(protocol: Protocol) -> list[dict[str, Any]]:
    if protocol.min_duration is None:
        return []
    duration = protocol.min_duration
    return [{"url": MIN_SESSION_EXT, "valueDuration": duration.fhir()}]
