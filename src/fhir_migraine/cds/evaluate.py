"""The one evaluator of the order-sign rules: it reads the rules table (rules.json, package data)
and, for each row, the finder of its ``kind`` yields findings (the fields its card's templates
use). Adding a rule of a known kind is a row; see docs/cds-rules.md."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from functools import cache
from importlib import resources
from typing import Any

from fhir_migraine import terminology
from fhir_migraine.cds.context import Drug, PatientContext
from fhir_migraine.identifiers import ORDER_STEP_SYSTEM
from fhir_migraine.inputs.protocols import Protocol
from fhir_migraine.inputs.quantity import Quantity

Rule = Mapping[str, Any]
Finding = dict[str, Any]
FindProtocol = Callable[[str, str | None], Protocol | None]
INTERVAL_DAYS = {"d": 1, "wk": 7, "mo": 30}  # a month counted as 30 days: the shortest the schedule allows


@cache
def rules() -> tuple[dict[str, Any], ...]:
    text = resources.files("fhir_migraine.cds").joinpath("rules.json").read_text(encoding="utf-8")
    return tuple(json.loads(text)["rules"])


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M UTC") if at else "time not recorded"


def _base(rule: Rule, draft: Drug, **fields: Any) -> Finding:
    return {"drug": draft.key, "draft": draft, **{k: v for k, v in rule.items() if isinstance(v, int | str)}, **fields}


def _others(context: PatientContext, draft: Drug) -> list[Drug]:
    return [d for d in (*context.drafts, *context.drugs) if d.resource is not draft.resource]


def _against(rule: Rule, draft: Drug, other: Drug, **fields: Any) -> Finding:
    """A finding about a draft and another drug; ``pair`` lets two drafts found each against the
    other make one card."""
    return _base(rule, draft, other=other.key, other_source=other.source, other_at=_when(other.at),
                 pair=frozenset({id(draft.resource), id(other.resource)}), **fields)


def within_hours(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """A drug of ``classes`` and a different drug of ``classes`` within ``hours`` either way."""
    window = timedelta(hours=rule["hours"])
    for draft in (d for d in context.drafts if d.drug_class in rule["classes"]):
        at = draft.at or context.now
        for other in _others(context, draft):
            if other.drug_class in rule["classes"] and other.key != draft.key and other.at is not None \
                    and abs(other.at - at) < window:
                hours = (other.at - at) / timedelta(hours=1)
                when = "within the hour" if abs(hours) < 1 else f"{abs(hours):.0f} h {'after' if hours > 0 else 'before'}"
                yield _against(rule, draft, other, when=when)
                break


def _ongoing(other: Drug, now: datetime) -> bool:
    """A diary MedicationStatement of a drug taken over time (not one intake at an
    ``effectiveDateTime``) that is active and has not ended: current whenever it started."""
    return other.source == "diary" and other.status == "active" and "effectiveDateTime" not in other.resource \
        and (other.end is None or other.end >= now)


def _active(other: Drug, now: datetime, days: int) -> bool:
    """An order or draft in force, a long-term drug still taken, or something given or taken in the
    last ``days``."""
    if other.source in ("order", "draft"):
        return other.status in ("active", "on-hold", "draft") and (other.end is None or other.end >= now)
    if _ongoing(other, now):
        return True
    return other.at is not None and now - timedelta(days=days) <= other.at <= now + timedelta(hours=1)


def _is_one_of(other: Drug, names: set[str], classes: set[str]) -> bool:
    """Whether a drug, or an ingredient of it (a combination product), is named or of a class."""
    keys = {other.key, *terminology.drug_ingredients(other.key)}
    found = {terminology.drug_class(k) for k in keys}
    return bool(keys & names) or other.drug_class in classes or any(c is not None and c.key in classes for c in found)


def with_drug(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """A drug of ``drugs`` with an active drug (or a combination with an ingredient) of ``others`` or
    of ``other_classes``."""
    names, classes = set(rule.get("others", ())), set(rule.get("other_classes", ()))
    for draft in (d for d in context.drafts if d.key in rule["drugs"]):
        for other in _others(context, draft):
            if other.key != draft.key and _is_one_of(other, names, classes) \
                    and _active(other, context.now, rule["within_days"]):
                yield _against(rule, draft, other)
                break


def with_condition(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    found = [c for c in rule["conditions"] if c in context.conditions]
    if context.pregnancy_tests and context.pregnancy_tests[-1][1] and "pregnancy" in rule["conditions"]:
        found = sorted({*found, "pregnancy"})
    for draft in (d for d in context.drafts if d.key in rule["drugs"]):
        if found:
            yield _base(rule, draft, condition=", ".join(c.replace("-", " ") for c in found))


def pregnancy_test(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """A drug of ``drugs`` for a patient of a gender in ``sexes`` (or none recorded) aged
    ``min_age``..``max_age`` without a negative pregnancy test in the last ``hours`` (or with a
    positive one since)."""
    could_be = (context.sex is None or context.sex in rule["sexes"]) and (
        context.age is None or rule["min_age"] <= context.age <= rule["max_age"])
    if not could_be:
        return
    since = context.now - timedelta(hours=rule["hours"])
    recent = [(at, positive) for at, positive in context.pregnancy_tests if at >= since]
    if recent and not any(positive for _, positive in recent):
        return
    reason = "positive pregnancy test" if any(p for _, p in recent) else f"no negative pregnancy test in {rule['hours']} h"
    if context.sex != "female":
        reason += f" (gender {context.sex or 'not recorded'})"
    if context.age is None:
        reason += " (age unknown)"
    for draft in (d for d in context.drafts if d.key in rule["drugs"]):
        yield _base(rule, draft, reason=reason)


def _dose_in(draft: Drug, unit: str) -> Decimal | None:
    if draft.dose is None:
        return None
    try:
        return Quantity(draft.dose[0], draft.dose[1]).to(unit).value
    except (KeyError, ArithmeticError):
        return None


def below_egfr(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """A drug of ``drugs`` for a patient whose latest eGFR is below ``below_egfr``."""
    if context.egfr is None or context.egfr >= rule["below_egfr"]:
        return
    for draft in (d for d in context.drafts if d.key in rule["drugs"]):
        yield _base(rule, draft, egfr=context.egfr)


def age_weight_renal(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """A dose above ``max_dose_mg`` for age ``min_age`` or more, weight below ``below_weight_kg``, or an
    eGFR from ``min_egfr`` up to ``below_egfr`` (below ``min_egfr`` the drug is another rule's)."""
    if context.egfr is not None and context.egfr < rule.get("min_egfr", 0):
        return
    reasons = []
    if context.age is not None and context.age >= rule["min_age"]:
        reasons.append(f"age {context.age}")
    if context.weight_kg is not None and context.weight_kg < rule["below_weight_kg"]:
        reasons.append(f"weight {context.weight_kg:.1f} kg")
    if context.egfr is not None and context.egfr < rule["below_egfr"]:
        reasons.append(f"eGFR {context.egfr}")
    for draft in (d for d in context.drafts if d.key in rule["drugs"]):
        dose = _dose_in(draft, "mg")
        route = _route_key(draft.route)
        limit = rule.get("max_dose_mg_by_route", {}).get(route, rule["max_dose_mg"])
        if reasons and dose is not None and dose > limit:
            yield _base(rule, draft, dose=dose, reason=", ".join(reasons), limit=limit,
                        route=route or "route not recorded", new_dose=Quantity(Decimal(limit), "mg"))


def _route_key(route: str | None) -> str | None:
    """``intravenous`` or ``intramuscular`` from a route's text or display (``Intravenous route``,
    ``IV``, ``IM``), else None (another route, or none recorded)."""
    words = (route or "").replace("-", " ").split()
    if "intravenous" in words or "iv" in words:
        return "intravenous"
    if "intramuscular" in words or "im" in words:
        return "intramuscular"
    return None


def course_days(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """More than ``max_days`` calendar days of a drug: the draft's own days and the recent ones."""
    for draft in (d for d in context.drafts if d.key in rule["drugs"]):
        start = draft.at or context.now
        end = max(draft.end or start, start)
        days = {start.date() + timedelta(days=i) for i in range((end.date() - start.date()).days + 1)}
        earlier = start - timedelta(days=rule["max_days"] + 1)
        days |= {d.at.date() for d in _others(context, draft)
                 if d.key == draft.key and d.at is not None and earlier <= d.at <= start}
        if len(days) > rule["max_days"]:
            yield _base(rule, draft, days=len(days))


def qt(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """A drug of ``drugs`` with a QTc above ``qtc_above_ms`` (``critical_above`` drugs: critical), or
    with another of them; an ``ecg_first`` drug with no QTc on record needs an ECG before it is given."""
    threshold = rule["qtc_above_ms"].get(context.sex or "other", rule["qtc_above_ms"]["other"])
    for draft in (d for d in context.drafts if d.key in rule["drugs"]):
        if context.qtc_ms is not None and context.qtc_ms > threshold:
            critical = draft.key in rule.get("critical_above", ())
            yield _base(rule, draft, reason=f"{draft.key} with QTc {context.qtc_ms} ms (above {threshold} ms)"
                        + (", contraindicated" if critical else ""),
                        indicator="critical" if critical else rule["indicator"])
            continue
        if context.qtc_ms is None and draft.key in rule.get("ecg_first", ()):
            yield _base(rule, draft, reason=f"{draft.key} with no QTc on record: a 12-lead ECG is needed before it is given")
        other = next((o for o in _others(context, draft) if o.key in rule["drugs"] and o.key != draft.key
                      and _active(o, context.now, 1)), None)
        if other is not None:
            yield _against(rule, draft, other, reason=f"{draft.key} with {other.key} ({other.source})")


def duplicate_class(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    seen: dict[str, Drug] = {}
    for draft in context.drafts:
        klass = draft.drug_class
        if klass is None or klass not in rule["classes"]:
            continue
        first = seen.setdefault(klass, draft)
        if first.key != draft.key:
            yield _against(rule, draft, first, class_display=terminology.drug_class_display(klass))


def _protocol_step(draft: Drug, find: FindProtocol | None) -> tuple[Protocol, str] | None:
    canonical = next(iter(draft.resource.get("instantiatesCanonical") or []), None)
    if find is None or not isinstance(canonical, str) or "/PlanDefinition/" not in canonical:
        return None
    protocol_id, _, version = canonical.rsplit("/", 1)[1].partition("|")
    protocol = find(protocol_id, version or None)
    step = next((i.get("value", "").rpartition("/")[2] for i in draft.resource.get("identifier") or []
                 if isinstance(i, dict) and i.get("system") == ORDER_STEP_SYSTEM), None)
    return (protocol, step or "") if protocol is not None else None


def above_limit(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """A draft's dose above its protocol step's ``max_dose`` (the step the identifier names)."""
    for draft in context.drafts:
        found = _protocol_step(draft, find)
        step = found[0].step(found[1]) if found else None
        if found is None or step is None or draft.dose is None:
            continue
        if step.drug is not None and terminology.drug_key(step.drug.name) == draft.key:
            limits = [step.max_dose]
        else:
            limits = [a.max_dose for a in step.additives if terminology.drug_key(a.drug.name) == draft.key]
        limit = next((q for q in limits if q is not None and q.unit in ("mg", "g", "ug")), None)
        dose = _dose_in(draft, limit.unit) if limit else None
        if limit is not None and dose is not None and dose > limit.value:
            yield _base(rule, draft, dose=draft.dose[0], unit=draft.dose[1], limit=limit.text(), new_dose=limit,
                        protocol=found[0].id, version=found[0].version, step=found[1], source_url=found[0].canonical)


def interval(rule: Rule, context: PatientContext, find: FindProtocol | None) -> Iterator[Finding]:
    """A preventive infusion sooner than its protocol's schedule ``every`` after the last one."""
    for draft in context.drafts:
        found = _protocol_step(draft, find)
        schedule = found[0].schedule if found else None
        if found is None or schedule is None or schedule.kind != "interval" or schedule.every is None:
            continue
        minimum = timedelta(days=float(schedule.every) * INTERVAL_DAYS.get(schedule.unit or "d", 1))
        at = draft.at or context.now
        earlier = [d for d in context.drugs if d.key == draft.key and d.at is not None and d.at < at
                   and d.source in ("administration", "order", "diary")]
        last = max(earlier, key=lambda d: d.at or at, default=None)
        if last is not None and last.at is not None and at - last.at < minimum:
            yield _against(rule, draft, last, days=(at - last.at).days, every=schedule.every, unit=schedule.unit,
                           protocol=found[0].id, source_url=found[0].canonical)


KINDS: dict[str, Callable[[Rule, PatientContext, FindProtocol | None], Iterator[Finding]]] = {
    "within-hours": within_hours,
    "with-drug": with_drug,
    "with-condition": with_condition,
    "pregnancy-test": pregnancy_test,
    "below-egfr": below_egfr,
    "age-weight-renal": age_weight_renal,
    "course-days": course_days,
    "qt": qt,
    "duplicate-class": duplicate_class,
    "above-limit": above_limit,
    "interval": interval,
}


def triggered(rule: Rule, context: PatientContext) -> bool:
    """Whether any draft is of a drug or class the rule is about (a rule of every drug: True)."""
    drugs, classes = rule.get("drugs"), rule.get("classes")
    if drugs is None and classes is None:
        return bool(context.drafts)
    return any(d.key in (drugs or ()) or d.drug_class in (classes or ()) for d in context.drafts)


def evaluate(context: PatientContext, find: FindProtocol | None = None,
             table: tuple[Mapping[str, Any], ...] | None = None) -> Iterator[tuple[Rule, Finding | None]]:
    """Each rule's findings; ``(rule, None)`` for a rule that concerns a draft but could not run
    because a prefetch it needs was missing (never a silent pass)."""
    for rule in table if table is not None else rules():
        if not triggered(rule, context):
            continue
        if set(rule.get("needs", ())) & context.missing:
            yield rule, None
            continue
        pairs: set[frozenset[int]] = set()
        for finding in KINDS[rule["kind"]](rule, context, find):
            if "pair" in finding:
                if finding["pair"] in pairs:
                    continue
                pairs.add(finding["pair"])
            yield rule, finding
