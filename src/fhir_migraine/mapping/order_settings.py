"""How a site wants its orders written: a small frozen record the edges read from the environment
(config.py) and pass to the pure mapping."""

from __future__ import annotations

from dataclasses import dataclass

#: The MedicationRequest and RequestGroup status a site may send orders with: ``draft`` for signature
#: in the EHR, or ``active`` (already signed). https://hl7.org/fhir/R4/valueset-medicationrequest-status.html
ORDER_STATUSES = ("draft", "active")
#: The intents a site may send orders with: the codes FHIR R4 allows both for MedicationRequest.intent
#: and RequestGroup.intent that describe a new request written from a protocol (reflex, filler and
#: instance orders, and options, are made from another request).
#: https://hl7.org/fhir/R4/valueset-medicationrequest-intent.html, https://hl7.org/fhir/R4/valueset-request-intent.html
ORDER_INTENTS = ("order", "original-order", "plan", "proposal")


@dataclass(frozen=True)
class OrderSettings:
    """How a site wants its orders written: their status and intent, and whether the order's body
    weight is also written into the chart as a stand-alone vital-sign Observation (it always travels
    with each MedicationRequest as a contained Observation)."""

    status: str = "draft"
    intent: str = "order"
    weight_observation: bool = False


#: The settings of a site that sets none: draft orders of intent ``order``, no charted weight.
DEFAULT_ORDER_SETTINGS = OrderSettings()
