"""The operations the CLI and the service share: compositions of the pure parts, no I/O."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from fhir_migraine import validation
from fhir_migraine.errors import InputError, Problem
from fhir_migraine.inputs import diary, orders
from fhir_migraine.inputs.diary_files import Located, located
from fhir_migraine.inputs.order_limits import order_limit_problems
from fhir_migraine.inputs.orders import FindProtocol
from fhir_migraine.inputs.protocols import Protocol
from fhir_migraine.mapping import attacks, plausibility, report_document, summary, summary_fhir
from fhir_migraine.mapping import diary as diary_map
from fhir_migraine.mapping.fhir import transaction
from fhir_migraine.mapping.order_settings import DEFAULT_ORDER_SETTINGS, OrderSettings
from fhir_migraine.mapping.orders import MappedOrder, to_fhir_order
from fhir_migraine.mapping.plandefinition import to_fhir_plan_definition
from fhir_migraine.mapping.unmap_diary import entries_from_bundle
from fhir_migraine.mapping.unmap_orders import orders_from_bundle, without_protocol_defaults

Resource = dict[str, Any]


def utc_now() -> str:
    """The current instant as a FHIR dateTime in UTC with seconds."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def map_order(
    document: Any, find_protocol: FindProtocol, *, now: Callable[[], str] = utc_now,
    settings: OrderSettings = DEFAULT_ORDER_SETTINGS,
) -> Resource:
    """Order document -> transaction Bundle, written as the site's ``settings`` say (the edges
    read them from FHIR_MIGRAINE_ORDER_*; the default is a draft order)."""
    return map_order_with_warnings(document, find_protocol, now=now, settings=settings).bundle


def map_order_with_warnings(
    document: Any, find_protocol: FindProtocol, *, now: Callable[[], str] = utc_now,
    settings: OrderSettings = DEFAULT_ORDER_SETTINGS,
) -> MappedOrder:
    """Order document -> transaction Bundle, and the OperationOutcome of its warnings (a delivery
    beyond a labelled rate), which do not stop the order (None when there are none)."""
    order = orders.load(document, find_protocol)
    problems = order_limit_problems(order)
    if problems:
        raise InputError.of(problems, "order")
    mapped = to_fhir_order(order, now=now(), settings=settings)
    validation.check(mapped.bundle)  # a mapping that breaks a profile is a bug: never return or queue it
    return mapped


def unmap(
    bundle: Any, find_protocol: FindProtocol | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Bundle (transaction or searchset) -> the orders and diary entries it holds.

    With ``find_protocol``, overrides that only repeat the protocol version each order names
    are left out, which gives back the order as it was written.
    """
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InputError.of([Problem("$.resourceType", "must be 'Bundle'")], "FHIR input")
    found = orders_from_bundle(bundle, find_protocol=find_protocol)
    if find_protocol is not None:
        for i, order in enumerate(found):
            protocol = find_protocol(order["protocol"], order.get("protocol_version"))
            if protocol is not None:
                found[i] = without_protocol_defaults(order, protocol)
    return {"orders": found, "diary": entries_from_bundle(bundle)}


MAX_PROBLEMS = 200


def load_diary(entries: Iterable[Located], *, placed: list[plausibility.Placed] | None = None,
               wheres: dict[str, Located] | None = None, ledger: attacks.Ledger | None = None) -> list[diary.DiaryEntry]:
    """Every entry checked; one InputError with the problems of all bad entries (up to 200).
    ``placed``/``wheres``, when given, receive each entry with its JSON path, and each path's input.
    ``ledger``: the attacks of the entries read before (a diary read in parts), which receives these."""
    read: list[tuple[diary.DiaryEntry, Located]] = []
    problems: list[Problem] = []
    seen: set[str] = set()
    ledger = ledger if ledger is not None else attacks.Ledger()
    for where in entries:
        try:
            entry = diary.load(where.document, where.base)
        except InputError as exc:
            problems += [located(p, where) for p in exc.problems]
            if len(problems) >= MAX_PROBLEMS:
                break
            continue
        if entry.entry_id in seen:
            problem = Problem(f"{where.base}.entry_id", f"entry id {entry.entry_id!r} appears twice in this diary")
            problems.append(located(problem, where))
            continue
        seen.add(entry.entry_id)
        read.append((entry, where))
    # Attack ids across the diary, in the order the attacks began: an attack comes before its
    # continuations whatever the order of the entries (a pulled diary comes in any order).
    ordered = sorted(read, key=lambda pair: attacks.first_start(pair[0]))
    for entry, where in ordered:
        problems += [located(p, where) for p in ledger.claim(entry, where.base)]
    for entry, where in ordered:
        contradicted = ledger.continuing(entry, where.base)
        problems += [located(p, where) for p in contradicted]
        if not contradicted:
            ledger.add(entry)
    if problems:
        raise InputError.of(problems[:MAX_PROBLEMS], "diary")
    for entry, where in read:
        if placed is not None:
            placed.append(plausibility.Placed(entry, where.base))
        if wheres is not None:
            wheres[where.base] = where
    return [entry for entry, _ in read]


def map_diary(entries: Iterable[Located], *, ledger: attacks.Ledger | None = None) -> Resource:
    """Diary entries -> one transaction Bundle of Observations (all entries valid, or InputError)."""
    return map_diary_with_warnings(entries, ledger=ledger)[0]


def map_diary_with_warnings(entries: Iterable[Located], *, now: datetime | None = None,
                            with_summary: bool = False, ledger: attacks.Ledger | None = None,
                            ) -> tuple[Resource, Resource | None]:
    """Diary entries -> the transaction Bundle, and the OperationOutcome of what is possible but
    unlikely in them (``mapping.plausibility``; None when nothing is): warnings never stop the diary.
    ``with_summary``: the Bundle also holds the diary's summary over all its days and its
    medication-overuse risks (``mapping.summary_fhir``), so the clinician sees them in the EHR.
    ``ledger``: for a diary mapped in parts, the attacks of the parts before (continued attacks
    are found there, and their days corrected); it receives this part's."""
    placed: list[plausibility.Placed] = []
    wheres: dict[str, Located] = {}
    ledger = ledger if ledger is not None else attacks.Ledger()
    loaded = load_diary(entries, placed=placed, wheres=wheres, ledger=ledger)
    corrected = ledger.corrected(loaded)
    bundle = diary_map.to_fhir_bundle(loaded, corrected)
    if with_summary and loaded:
        bundle["entry"] += transaction(summary_fhir.to_fhir_summary(diary_summary(loaded)))["entry"]
    validation.check(bundle)
    found = plausibility.warnings(placed, now or datetime.now(UTC)) + attacks.correction_warnings(placed, corrected)
    return bundle, warnings_outcome([located(p, wheres[p.path.split(".")[0]]) if p.path.split(".")[0] in wheres else p
                                     for p in found])


def warnings_outcome(problems: list[Problem]) -> Resource | None:
    """An OperationOutcome of warnings, each at the input's JSON path (and line or row)."""
    issues = [{"severity": "warning", "code": "business-rule",
               "diagnostics": p.message + (f" ({p.location})" if p.location else ""), "expression": [p.path]}
              for p in problems]
    return {"resourceType": "OperationOutcome", "issue": issues} if issues else None


def diary_summary(entries: list[diary.DiaryEntry], *, month: str | None = None, first: str | None = None,
                  last: str | None = None) -> dict[str, Any]:
    """The figures of one patient's diary over a month, a period, or (neither) all its days
    (``mapping.summary``); InputError naming the field for a period that is not one."""
    start, end = summary.period(month, first, last, entries)
    return summary.summarize(entries, start, end)


def check_transaction(bundle: Resource) -> None:
    """A Bundle to push must conform to FHIR R4 and to the profiles its resources declare, and
    its entries must be conditional creates (so a re-send creates nothing new)."""
    validation.check(bundle, "Bundle's resources")
    for i, entry in enumerate(bundle.get("entry", [])):
        request = entry.get("request", {})
        if request.get("method") != "POST" or not request.get("ifNoneExist"):
            raise InputError.of([Problem(f"$.entry[{i}].request", "must be a conditional create (POST with ifNoneExist)")], "Bundle")


def export_protocol(protocol: Protocol) -> Resource:
    plan = to_fhir_plan_definition(protocol)
    validation.check(plan, "exported PlanDefinition")
    return plan


def unmap_pulled(bundle: Resource, find_protocol: FindProtocol | None = None) -> dict[str, Any]:
    """A pulled searchset -> orders and diary entries, each resource validated first: those that
    break the base spec or their profiles are reported under ``invalid`` (with their
    OperationOutcome) and left out of the unmapping, never silently dropped; an order or entry
    that cannot be read back without them is reported under ``incomplete``; what the pull says it
    left out (an OperationOutcome entry of ``search.mode`` ``outcome``) under ``warnings``."""
    from fhir_migraine.validation.issues import has_errors

    validator = validation.default_validator()
    kept, invalid, warnings = [], [], []
    for entry in bundle.get("entry", []):
        resource = entry.get("resource", {})
        if (entry.get("search") or {}).get("mode") == "outcome":  # what the pull could not ask
            warnings += [i.get("diagnostics", "") for i in resource.get("issue", []) if isinstance(i, dict)]
            continue
        result = validator.validate(resource)
        if has_errors(result):
            invalid.append({"resource": f"{resource.get('resourceType')}/{resource.get('id')}", "outcome": result})
        else:
            kept.append(entry)
    partial = {**bundle, "entry": kept}
    incomplete: list[dict[str, Any]] = []
    orders = orders_from_bundle(partial, incomplete, find_protocol)
    if find_protocol is not None:
        found = [(o, find_protocol(o["protocol"], o.get("protocol_version"))) for o in orders]
        orders = [without_protocol_defaults(o, p) if p is not None else o for o, p in found]
    return {"orders": orders, "diary": entries_from_bundle(partial, incomplete),
            "reports": report_document.reports_in(partial), "invalid": invalid, "incomplete": incomplete,
            "warnings": warnings}


def validate(resource: Any, profile: str | None = None) -> Resource:
    """The OperationOutcome of any resource or Bundle."""
    return validation.default_validator().validate(resource, profile=profile)


@dataclass(frozen=True)
class MonthlyReport:
    """A month's report: its view (``report.month``), the HTML page, the PDF, and the
    DocumentReference that files both in the chart."""

    view: dict[str, Any]
    html: str
    pdf: bytes
    document: Resource


def report_month(month: str, now: datetime | None = None) -> str:
    """``month`` (YYYY-MM) when a report can be made of it; InputError at ``$.month`` for a month
    that does not exist or has not begun."""
    from fhir_migraine.report.month import month_of

    return str(month_of(month, (now or datetime.now(UTC)).date()))


def report_view(entries: list[diary.DiaryEntry], requests: list[Resource], month: str, *,
                made_at: datetime | None = None) -> dict[str, Any]:
    """The month's view of one patient's diary (``report.month``), with the MedicationRequests
    ``requests`` as the EHR holds them. InputError at ``$.month`` for a month that does not exist
    or has not begun, at ``$.diary`` for a patient with no diary entries."""
    from fhir_migraine.report.month import month_of, month_view

    made = made_at or datetime.now(UTC)
    chosen = month_of(month, made.date())
    if not entries:
        raise InputError.of([Problem("$.diary", "the patient has no diary entries: there is nothing to report")], "request")
    placed = [plausibility.Placed(e, f"$[{i}]") for i, e in enumerate(entries)]
    dates = {f"$[{i}]": e.date for i, e in enumerate(entries)}
    return month_view(entries, requests, chosen, made_at=made, warnings=_month_warnings(placed, dates, made, str(chosen)))


def render_report(view: dict[str, Any], *, replaces: str | None = None) -> MonthlyReport:
    """The view as HTML and PDF, and the DocumentReference filing both (validated);
    ``replaces``: the reference of the month's report filed before, when there is one."""
    from fhir_migraine.report import render

    page = render.html(view)
    pdf = render.pdf(page)
    document = report_document.to_fhir_report(view, pdf, page, replaces=replaces)
    validation.check(document)
    return MonthlyReport(view, page, pdf, document)


def _month_warnings(placed: list[plausibility.Placed], dates: dict[str, str], now: datetime, month: str) -> list[str]:
    """The plausibility warnings of the month's entries, each with its entry's day."""
    found = []
    for problem in plausibility.warnings(placed, now):
        day = dates.get(problem.path.split(".")[0], "")
        if day.startswith(month):
            found.append(f"{day}: {problem.message}")
    return found
