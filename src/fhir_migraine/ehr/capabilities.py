"""What an EHR says it can do, read from its CapabilityStatement (FHIR R4 capabilitystatement.html),
and what that means for pushing and pulling.

Read from ``rest`` of mode ``server``:

- ``rest.interaction`` ``transaction`` / ``batch``: whether Bundles of those types are accepted;
- ``rest.resource[type]``: ``interaction`` ``create`` / ``update`` / ``read`` / ``search-type``,
  ``conditionalCreate`` (``If-None-Exist``), ``versioning``, ``searchParam`` names (with the
  common ones of ``rest.searchParam``) and ``operation`` names (``Group`` ``export``: FHIR Bulk Data).

A statement that says nothing of a type does not allow it: an EHR lists what it supports (Epic's
and Oracle Health's published statements list a few types). A type listed without any
``searchParam`` is taken to support the standard ones (a server that lists none has not said
which). The write strategy: ``transaction`` when advertised, else ``batch``, else one request per
resource (``per-resource``); a configured strategy overrides the choice.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from fhir_migraine.errors import EhrUnsupported

log = logging.getLogger(__name__)
Resource = dict[str, Any]

#: What a type listed without searchParams is taken to support.
STANDARD_SEARCH = frozenset({"_id", "_lastUpdated", "identifier", "patient", "subject"})


@dataclass(frozen=True)
class TypeCapabilities:
    """What one resource type allows."""

    interactions: frozenset[str] = frozenset()
    conditional_create: bool = False
    search_params: frozenset[str] = frozenset()
    #: The operations listed on the type (``rest.resource.operation.name``, such as ``export``).
    operations: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Capabilities:
    """What one EHR allows, as its CapabilityStatement says. ``digest``: of the statement, so a
    change is noticed."""

    system: frozenset[str] = frozenset()
    types: dict[str, TypeCapabilities] = field(default_factory=dict)
    digest: str = ""
    #: False: the EHR's statement could not be read, so everything is tried (and a refusal tells).
    known: bool = True

    @classmethod
    def unknown(cls) -> Capabilities:
        """What is assumed of an EHR whose statement cannot be read: everything, transaction first."""
        return cls(frozenset({"transaction", "batch"}), {}, "", known=False)

    def can(self, resource_type: str, interaction: str) -> bool:
        found = self.types.get(resource_type)
        return not self.known or (found is not None and interaction in found.interactions)

    def conditional_create(self, resource_type: str) -> bool:
        found = self.types.get(resource_type)
        return not self.known or (found is not None and found.conditional_create and self.can(resource_type, "create"))

    def searches(self, resource_type: str, param: str) -> bool:
        found = self.types.get(resource_type)
        return not self.known or (
            found is not None and "search-type" in found.interactions and param in found.search_params)

    def patient_param(self, resource_type: str) -> str | None:
        """The search parameter naming the patient: ``patient`` where offered, else ``subject``."""
        for param in ("patient", "subject"):
            if self.searches(resource_type, param):
                return param
        return None

    def exports_group(self) -> bool:
        """Whether the EHR lists FHIR Bulk Data's group export (``Group`` operation ``export``); an
        EHR whose statement could not be read is asked, and a refused kick-off tells."""
        found = self.types.get("Group")
        return not self.known or (found is not None and "export" in found.operations)

    def strategy(self) -> str:
        """The best write strategy the EHR advertises."""
        if "transaction" in self.system:
            return "transaction"
        if "batch" in self.system:
            return "batch"
        return "per-resource"

    def missing_writes(self, types: Iterable[str], *, update: bool = False) -> list[str]:
        """The writes not advertised among those the types need, named as "create MedicationRequest"."""
        wanted = ("create", "update") if update else ("create",)
        return [f"{w} {t}" for t in sorted(set(types)) for w in wanted if not self.can(t, w)]


def _codes(items: Any) -> frozenset[str]:
    return frozenset(i["code"] for i in items if isinstance(i, dict) and isinstance(i.get("code"), str)) \
        if isinstance(items, list) else frozenset()


def _names(items: Any) -> frozenset[str]:
    return frozenset(i["name"] for i in items if isinstance(i, dict) and isinstance(i.get("name"), str)) \
        if isinstance(items, list) else frozenset()


def _operations(items: Any) -> frozenset[str]:
    """The operations a type lists, by name without a leading ``$``; Bulk Data's group export also
    when only its canonical definition (``…/OperationDefinition/group-export``) names it."""
    found = {name.removeprefix("$") for name in _names(items)}
    for item in items if isinstance(items, list) else []:
        definition = item.get("definition") if isinstance(item, dict) else None
        if isinstance(definition, str) and definition.rstrip("/").endswith("/OperationDefinition/group-export"):
            found.add("export")
    return frozenset(found)


def read_capabilities(statement: Resource) -> Capabilities:
    """The Capabilities of a CapabilityStatement; EhrUnsupported when it is not one or has no server part."""
    if not isinstance(statement, dict) or statement.get("resourceType") != "CapabilityStatement":
        raise EhrUnsupported("the EHR's /metadata is not a CapabilityStatement")
    rests = [r for r in statement.get("rest") or [] if isinstance(r, dict) and r.get("mode") == "server"]
    if not rests:
        raise EhrUnsupported("the EHR's CapabilityStatement has no rest part of mode server")
    rest = rests[0]
    common = _names(rest.get("searchParam"))
    types: dict[str, TypeCapabilities] = {}
    for resource in rest.get("resource") or []:
        if not isinstance(resource, dict) or not isinstance(resource.get("type"), str):
            continue
        params = _names(resource.get("searchParam"))
        types[resource["type"]] = TypeCapabilities(
            interactions=_codes(resource.get("interaction")),
            conditional_create=resource.get("conditionalCreate") is True,
            search_params=(params | common) if params else STANDARD_SEARCH | common,
            operations=_operations(resource.get("operation")),
        )
    text = json.dumps(statement.get("rest"), sort_keys=True, default=str)
    return Capabilities(_codes(rest.get("interaction")), types, hashlib.sha256(text.encode()).hexdigest())


class CapabilityCache:
    """The EHR's Capabilities, read once and kept ``ttl`` seconds (then read again, so a change is
    noticed); ``refresh`` reads at once (the readiness probe feeds it, an unsupported answer does)."""

    def __init__(self, fetch: Callable[[], Resource], *, ttl: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.fetch, self.ttl, self.clock = fetch, ttl, clock
        self._lock = threading.Lock()
        self._found: tuple[float, Capabilities] | None = None

    def get(self) -> Capabilities:
        """The cached Capabilities, read now when there are none or they are older than ``ttl``
        (an ``EhrError`` when the EHR cannot be asked)."""
        with self._lock:
            found = self._found
        if found is not None and self.clock() - found[0] < self.ttl:
            return found[1]
        return self.refresh()

    def refresh(self, statement: Resource | None = None) -> Capabilities:
        """Read the statement now (or take the one given) and keep it; ``Capabilities.unknown()``
        when the EHR answers with something that is not a statement (an ``EhrError`` when it
        cannot be asked)."""
        answer = self.fetch() if statement is None else statement
        try:
            found = read_capabilities(answer)
        except EhrUnsupported as error:
            log.warning("the EHR's CapabilityStatement cannot be read; every write is tried",
                        extra={"reason": error.message})
            found = Capabilities.unknown()
        with self._lock:
            self._found = (self.clock(), found)
        return found

    def forget(self) -> None:
        with self._lock:
            self._found = None

    def last(self) -> Capabilities | None:
        """The Capabilities last read, however old; None before the first read."""
        with self._lock:
            return None if self._found is None else self._found[1]
