"""Required bindings of the base R4 spec on the elements of the resources this project uses.

Each list is the code system of the binding as published in FHIR R4 4.0.1
(https://hl7.org/fhir/R4/valueset-<name>.html, named beside each entry).
"""

from __future__ import annotations

_REQUEST_STATUS = frozenset({"draft", "active", "on-hold", "revoked", "completed", "entered-in-error", "unknown"})
_REQUEST_INTENT = frozenset({"proposal", "plan", "directive", "order", "original-order", "reflex-order",
                             "filler-order", "instance-order", "option"})
_PUBLICATION_STATUS = frozenset({"draft", "active", "retired", "unknown"})

BASE_CODES: dict[str, frozenset[str]] = {
    # observation-status
    "Observation.status": frozenset({"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                                     "entered-in-error", "unknown"}),
    # medicationrequest-status
    "MedicationRequest.status": frozenset({"active", "on-hold", "cancelled", "completed", "entered-in-error", "stopped",
                                           "draft", "unknown"}),
    # medicationrequest-intent
    "MedicationRequest.intent": frozenset({"proposal", "plan", "order", "original-order", "reflex-order", "filler-order",
                                           "instance-order", "option"}),
    # medication-statement-status
    "MedicationStatement.status": frozenset({"active", "completed", "entered-in-error", "intended", "stopped", "on-hold",
                                             "unknown", "not-taken"}),
    # observation-status, detectedissue-severity
    "DetectedIssue.status": frozenset({"registered", "preliminary", "final", "amended", "corrected", "cancelled",
                                       "entered-in-error", "unknown"}),
    "DetectedIssue.severity": frozenset({"high", "moderate", "low"}),
    # medication-status
    "Medication.status": frozenset({"active", "inactive", "entered-in-error"}),
    # request-status, request-intent
    "RequestGroup.status": _REQUEST_STATUS,
    "RequestGroup.intent": _REQUEST_INTENT,
    # publication-status
    "PlanDefinition.status": _PUBLICATION_STATUS,
    "ActivityDefinition.status": _PUBLICATION_STATUS,
    "StructureDefinition.status": _PUBLICATION_STATUS,
    "ValueSet.status": _PUBLICATION_STATUS,
    "CodeSystem.status": _PUBLICATION_STATUS,
    # bundle-type, http-verb
    "Bundle.type": frozenset({"document", "message", "transaction", "transaction-response", "batch", "batch-response",
                              "history", "searchset", "collection"}),
    "BundleEntryRequest.method": frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH"}),
    # quantity-comparator
    "Quantity.comparator": frozenset({"<", "<=", ">=", ">"}),
    # units-of-time (Timing.repeat)
    "TimingRepeat.periodUnit": frozenset({"s", "min", "h", "d", "wk", "mo", "a"}),
    "TimingRepeat.durationUnit": frozenset({"s", "min", "h", "d", "wk", "mo", "a"}),
    # identifier-use
    "Identifier.use": frozenset({"usual", "official", "temp", "secondary", "old"}),
    # action-relationship-type
    "RequestGroupActionRelatedAction.relationship": frozenset({"before-start", "before", "before-end", "concurrent-with-start",
                                                               "concurrent", "concurrent-with-end", "after-start", "after",
                                                               "after-end"}),
}
