"""What the outbox worker, the pull and the service need from an EHR, as protocols: the FHIR
client (``client.FhirClient``) provides them all, and a test double provides only what it is asked."""

from __future__ import annotations

from typing import Any, Iterator, Protocol

Resource = dict[str, Any]


class Transactions(Protocol):
    """Accepts transaction Bundles (what the outbox worker sends)."""

    def transaction(self, bundle: Resource) -> Resource:
        """POST a transaction Bundle; the transaction-response Bundle, or an ``EhrError``."""
        ...


class Searches(Protocol):
    """Answers searches (what a pull asks)."""

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[Resource]:
        """Every page (a searchset Bundle) of one search, or an ``EhrError``."""
        ...


class Ehr(Transactions, Searches, Protocol):
    """A whole EHR: transactions, searches, and its CapabilityStatement (what readiness checks)."""

    def metadata(self) -> Resource:
        """The CapabilityStatement, or an ``EhrError``."""
        ...
