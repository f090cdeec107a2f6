"""MedicationRequests (a transaction Bundle or a searchset) -> orders, the reverse of orders.py.

An unmapped order names every step explicitly in ``overrides``: the ordered dose of each push
or injection (per kg when it was ordered per kg), the additives' amounts and the rate or
duration of each bag. Mapping it again with the same protocol gives the same resources.
"""

from __future__ import annotations

from typing import Any

from fhir_migraine.errors import InputError
from fhir_migraine.identifiers import ORDER_STEP_SYSTEM, ORDER_WEIGHT_SYSTEM, parse_order_value, parse_step_value
from fhir_migraine.inputs import orders as order_inputs
from fhir_migraine.inputs.orders import FindProtocol, parse_instant
from fhir_migraine.inputs.protocols import Protocol
from fhir_migraine.inputs.quantity import number_text
from fhir_migraine.mapping.fhir import ORDERED_DOSE_EXT, Resource, first_identifier
from fhir_migraine.mapping.orders import AGE, BODY_WEIGHT, WEIGHT_SOURCES
from fhir_migraine.mapping.reader import Reader
from fhir_migraine.mapping.sequencing import shift_instant


def orders_from_bundle(bundle: Resource, problems: list[dict[str, Any]] | None = None,
                       find_protocol: FindProtocol | None = None) -> list[dict[str, Any]]:
    """Every order found in the Bundle, in the order of its first entry; other resources ignored.

    With ``problems``, an order that cannot be read back is reported there instead of failing.
    With ``find_protocol``, each step's start is checked against the protocol's placements.
    """
    root = Reader(bundle)
    groups: dict[str, list[Reader]] = {}
    weights: dict[str, Reader] = {}
    unreadable: dict[str, list[str]] = {}  # order id -> why one of its requests cannot be read
    for entry in (root.opt("entry") or Reader([], "$.entry")).items():
        resource = entry.opt("resource")
        if resource is None or not isinstance(resource.value, dict):
            continue
        kind = resource.value.get("resourceType")
        step = first_identifier(resource.value, ORDER_STEP_SYSTEM) if kind == "MedicationRequest" else None
        if step:
            try:
                order_id = resource.get("groupIdentifier").get("value").str()
            except InputError as exc:
                if problems is None:
                    raise
                # The step's identifier still names its order, which cannot be read back without it.
                parsed = parse_step_value(step)
                name = f"MedicationRequest/{resource.value.get('id')}"
                unreadable.setdefault(parsed[0] if parsed else step, []).extend(f"{name}: {p}" for p in exc.problems)
                continue
            groups.setdefault(order_id, []).append(resource)
        elif kind == "Observation":
            order_id_w = parse_order_value(first_identifier(resource.value, ORDER_WEIGHT_SYSTEM) or "")
            if order_id_w:
                weights[order_id_w] = resource
    orders = []
    if problems is not None:
        problems.extend({"order_id": order_id, "problem": "; ".join(why)} for order_id, why in unreadable.items())
    for order_id, requests in groups.items():
        if order_id in unreadable:
            continue
        try:
            orders.append(_order(order_id, requests, weights.get(order_id), find_protocol))
        except InputError as exc:
            if problems is None:
                raise
            problems.append({"order_id": order_id, "problem": "; ".join(str(p) for p in exc.problems)})
    return orders


def _order(order_id: str, requests: list[Reader], charted: Reader | None,
           find_protocol: FindProtocol | None = None) -> dict[str, Any]:
    first = requests[0]
    canonical, _, version = first.get("instantiatesCanonical").get(0).str().partition("|")
    protocol = canonical.rsplit("/", 1)[-1]
    order: dict[str, Any] = {"order_id": order_id, "protocol": protocol}
    if version:
        order["protocol_version"] = version
    order["patient"] = first.get("subject").patient()
    order["requester"] = {"reference": first.get("requester").get("reference").str()}
    if first.opt("encounter") is not None:
        order["encounter"] = {"reference": first.get("encounter").get("reference").str()}
    if first.opt("priority") is not None:
        order["priority"] = first.get("priority").str()
    if first.opt("category") is not None:
        order["category"] = first.get("category").get(0).get("coding").get(0).get("code").str()
    order["start"] = _session_start(requests)
    order["authored"] = first.get("authoredOn").str()
    weight = _contained_weight(first)
    if weight is not None:
        order["weight"] = _weight(weight)
    elif charted is not None:  # written before the weight travelled with the order
        order["weight"] = charted.get("valueQuantity").quantity_text()
    age = _contained_age(first)
    if age is not None:
        order["age"] = age.get("valueQuantity").quantity_text()
    order["overrides"] = {_step_id(r, order_id): _step(r) for r in requests}
    known = find_protocol(protocol, version or None) if find_protocol is not None else None
    if known is not None:
        order["start"] = _start_by_protocol(order, requests, known)
    return order


def _contained_weight(request: Reader) -> Reader | None:
    """The weight a MedicationRequest carries: the contained body weight its supportingInformation names."""
    for support in (request.opt("supportingInformation") or Reader([], "")).items():
        reference = support.opt("reference")
        if reference is None or not reference.str().startswith("#"):
            continue
        found = _contained(request, reference.str(), ".supportingInformation")
        codes = [c.value for c in found.get("code").get("coding").items()] if found.opt("code") else []
        if any(isinstance(c, dict) and (c.get("system"), c.get("code")) == (BODY_WEIGHT.system, BODY_WEIGHT.code)
               for c in codes):
            return found
    return None


def _weight(weight: Reader) -> str | dict[str, Any]:
    """The order's ``weight``: the quantity, with when and how it was obtained when the order said."""
    quantity = weight.get("valueQuantity").quantity_text()
    codes = {c.get("code").str() for c in weight.get("code").get("coding").items()}
    source = next((name for name, code in WEIGHT_SOURCES.items() if code.code in codes), None)
    measured_at = weight.opt("effectiveDateTime")
    if source is None and measured_at is None:
        return quantity
    found: dict[str, Any] = {"quantity": quantity}
    if measured_at is not None:
        found["measured_at"] = measured_at.str()
    if source is not None:
        found["source"] = source
    return found


def _start_by_protocol(order: dict[str, Any], requests: list[Reader], protocol: Protocol) -> str:
    """The session's start from each step's first occurrence less the step's offset in the
    protocol (so a step missing from a pulled searchset changes nothing); a step that starts
    elsewhere contradicts the protocol and is refused at its ``boundsPeriod.start``."""
    try:
        loaded = order_inputs.load(order, lambda *_: protocol)
    except InputError:
        return str(order["start"])  # the order no longer fits the protocol: its placements say nothing
    offsets = {r.step.id: r.offset for r in loaded.steps}
    start: str | None = None
    for request in requests:
        step_id = _step_id(request, order["order_id"])
        if step_id not in offsets:
            continue
        first = request.get("dosageInstruction").get(0).get("timing").get("repeat").get("boundsPeriod").get("start")
        session = shift_instant(first.str(), -offsets[step_id])
        if start is None:
            start = session
        elif parse_instant(session) != parse_instant(start):
            after = f"{number_text(offsets[step_id] / 60)} min after" if offsets[step_id] else "at"
            raise first.fail(f"does not fit protocol {protocol.id!r}: step {step_id!r} starts {after} the "
                             f"session's start ({start})")
    return start or str(order["start"])


def _session_start(requests: list[Reader]) -> str:
    """The order's ``start``: the earliest first occurrence of its steps (a step placed before
    or after another starts later than the session; the earliest starts with it)."""
    starts = []
    for request in requests:
        for dosage in request.get("dosageInstruction").items():
            start = dosage.get("timing").get("repeat").get("boundsPeriod").get("start")
            moment = parse_instant(start.str())
            if moment is None:
                raise start.fail("must be a date-time with seconds and an offset")
            starts.append((moment, start.str()))
    return min(starts, key=lambda s: s[0])[1]


def _step_id(request: Reader, order_id: str) -> str:
    value = first_identifier(request.value, ORDER_STEP_SYSTEM) or ""
    parsed = parse_step_value(value)
    if parsed is None or parsed[0] != order_id:
        raise request.fail(f"identifier {value!r} does not belong to order {order_id!r}", ".identifier")
    return parsed[1]


def _ordered_dose(dosage: Reader) -> Reader:
    for entry in dosage.get("doseAndRate").items():
        codes = [c.get("code").str() for c in entry.get("type").get("coding").items()]
        if "ordered" in codes:
            return entry
    raise dosage.fail("has no ordered dose", ".doseAndRate")


def _step(request: Reader) -> dict[str, Any]:
    # A step with a first dose has two Dosages, the first dose then the repeats: the last one
    # holds the dose the order gives (the first dose is the protocol's).
    dosages = request.get("dosageInstruction").items()
    if not dosages:
        raise request.fail("is required", ".dosageInstruction")
    dosage = dosages[-1]
    ordered = _ordered_dose(dosage)
    if request.opt("medicationReference") is None:
        return {"dose": ordered.get("doseQuantity").quantity_text()}
    bag = _contained(request, request.get("medicationReference").get("reference").str())
    result: dict[str, Any] = {}
    additives = {}
    for ingredient in bag.get("ingredient").items():
        if ingredient.opt("isActive") is not None and ingredient.get("isActive").bool():
            name = ingredient.get("itemCodeableConcept").get("text").str()
            ordered_dose = _extension(ingredient, ORDERED_DOSE_EXT)
            amount = ordered_dose.get("valueQuantity") if ordered_dose else ingredient.get("strength").get("numerator")
            additives[name] = amount.quantity_text()
    if additives:
        result["additives"] = additives
    rate = ordered.opt("rateQuantity")
    if rate is not None:
        result["rate"] = rate.quantity_text()
    else:
        repeat = dosage.get("timing").get("repeat")
        value = repeat.get("duration").decimal()
        result["duration"] = f"{number_text(value)} {repeat.get('durationUnit').str()}"
    return result


def _extension(element: Reader, url: str) -> Reader | None:
    for extension in (element.opt("extension") or Reader([], element.path + ".extension")).items():
        if isinstance(extension.value, dict) and extension.value.get("url") == url:
            return extension
    return None


def without_protocol_defaults(order: dict[str, Any], protocol: Protocol) -> dict[str, Any]:
    """The order with the overrides that only repeat the protocol removed: the order as written."""
    overrides: dict[str, Any] = {}
    for step_id, values in order.get("overrides", {}).items():
        step = protocol.step(step_id)
        if step is None:
            overrides[step_id] = values
            continue
        kept = dict(values)
        if step.dose is not None and kept.get("dose") == step.dose.text():
            del kept["dose"]
        defaults = {a.drug.name: a.dose.text() for a in step.additives}
        additives = {k: v for k, v in kept.get("additives", {}).items() if defaults.get(k) != v}
        kept.pop("additives", None)
        if additives:
            kept["additives"] = additives
        for key, default in (("rate", step.rate), ("duration", step.duration)):
            if default is not None and kept.get(key) == default.text():
                del kept[key]
        if kept:
            overrides[step_id] = kept
    result = {k: v for k, v in order.items() if k != "overrides"}
    if protocol.priority is not None and result.get("priority") == protocol.priority:
        del result["priority"]  # the protocol's default, not the order's own
    if overrides:
        result["overrides"] = overrides
    return result


def _contained_age(request: Reader) -> Reader | None:
    """The contained age Observation (LOINC 30525-0) the request refers to, if any."""
    for resource in (request.opt("contained") or Reader([], request.path + ".contained")).items():
        value = resource.value if isinstance(resource.value, dict) else {}
        codes = (value.get("code") or {}).get("coding") or []
        if value.get("resourceType") == "Observation" and any(
            isinstance(c, dict) and c.get("code") == AGE.code and c.get("system") == AGE.system for c in codes
        ):
            return resource
    return None


def _contained(request: Reader, reference: str, where: str = ".medicationReference") -> Reader:
    for resource in (request.opt("contained") or Reader([], request.path + ".contained")).items():
        if "#" + str(resource.value.get("id") if isinstance(resource.value, dict) else "") == reference:
            return resource
    raise request.fail(f"contained resource {reference!r} not found", where)
