"""Reads the EHR's answer to a transaction or batch Bundle entry by entry: it is a success only
when it is a Bundle of the response type that matches the request and every entry's
``response.status`` is 2xx.

Why a 200 is not enough (FHIR R4 http.html, "Batch/Transaction" and "Transaction Response";
bundle.html, Bundle.type): a batch is processed entry by entry, so a ``batch-response`` may hold
failures beside successes; a server may process a transaction as a batch and say so by answering
``batch-response``, in which case the entries were not committed together and their references to
one another (``urn:uuid``) may not have been resolved; and the answer has one entry per request
entry, in the same order. So:

- a Bundle of another response type (``batch-response`` to a transaction, or the reverse):
  ``EhrUnsupported``, final: the EHR does not process this kind of Bundle as asked;
- entries that are not 2xx: the worst decides, by the statuses' table (``statuses.meaning``): any
  final entry (412, 400, 405, ``not-supported``...) makes the whole answer final, otherwise it is
  retried (429, 5xx, 409);
- an answer that is not a Bundle, has no type, or has fewer or more entries than were sent cannot
  be read: ``EhrUnavailable``, retried like an answer that is not JSON.

Every error carries ``entries``: for each entry, its place, the resource type sent, the status,
``location`` and a summary of its OperationOutcome.
"""

from __future__ import annotations

from typing import Any

from fhir_migraine.ehr.statuses import meaning, outcome_summary, status_code
from fhir_migraine.errors import EhrError, EhrUnavailable, EhrUnsupported

Resource = dict[str, Any]

#: The answer's type for each kind of Bundle sent (R4 bundle.html, Bundle.type).
RESPONSE_TYPE = {"transaction": "transaction-response", "batch": "batch-response"}
#: How many failing entries the error's message names; ``entries`` holds them all.
NAMED_IN_MESSAGE = 3


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def entry_outcomes(request: Resource, answer: Resource) -> list[dict[str, Any]]:
    """Each answered entry: ``index``, ``resource`` (the type sent in that place), ``status``,
    ``location`` and ``outcome`` (the summary of its OperationOutcome) when present."""
    sent = _list(request.get("entry"))
    found = []
    for index, entry in enumerate(_list(answer.get("entry"))):
        response = entry.get("response") if isinstance(entry, dict) else None
        response = response if isinstance(response, dict) else {}
        record: dict[str, Any] = {"index": index}
        resource = sent[index].get("resource") if index < len(sent) and isinstance(sent[index], dict) else None
        if isinstance(resource, dict) and isinstance(resource.get("resourceType"), str):
            record["resource"] = resource["resourceType"]
        record["status"] = response.get("status") if isinstance(response.get("status"), (str, int)) else None
        if isinstance(response.get("location"), str):
            record["location"] = response["location"]
        outcome = response.get("outcome")
        if isinstance(outcome, dict) and outcome.get("resourceType") == "OperationOutcome":
            summary = outcome_summary(outcome)
            if summary:
                record["outcome"] = summary
            codes = sorted({i["code"] for i in _list(outcome.get("issue"))
                            if isinstance(i, dict) and isinstance(i.get("code"), str)})
            if codes:
                record["issue_codes"] = codes
        found.append(record)
    return found


def _failure(record: dict[str, Any], outcome: Resource | None) -> type[EhrError] | None:
    """The EhrError class of one entry's answer, None for a success."""
    code = status_code(record["status"])
    if code is None:
        return EhrUnavailable  # no status: the answer cannot be read
    return None if 200 <= code <= 299 else meaning(code, outcome)


def _named(record: dict[str, Any]) -> str:
    what = f"entry {record['index']}" + (f" ({record['resource']})" if "resource" in record else "")
    status = record["status"] if record["status"] is not None else "no status"
    return f"{what} {status}" + (f": {record['outcome']}" if "outcome" in record else "")


def check_answer(request: Resource, answer: Resource, *, retry_after: float | None = None) -> None:
    """Raise the EhrError of an answer that is not a success (see the module's docstring); return
    for a Bundle of the right type whose every entry is 2xx. ``retry_after``: the EHR's, when
    the answer is retryable."""
    kind = request.get("type")
    expected = RESPONSE_TYPE.get(kind) if isinstance(kind, str) else None
    if answer.get("resourceType") != "Bundle" or not isinstance(answer.get("type"), str):
        raise EhrUnavailable(f"the EHR answered a {kind} with something that is not a response Bundle",
                             retry_after=retry_after)
    entries = entry_outcomes(request, answer)
    if expected is not None and answer["type"] != expected:
        # Final even when every entry is 2xx: the entries were not processed as one transaction.
        raise EhrUnsupported(f"the EHR answered a {kind} with a {answer['type']}, not a {expected}: it does not"
                             f" process a {kind} as one", entries=entries)
    answered = _list(answer.get("entry"))
    failures = []
    for record, entry in zip(entries, answered, strict=True):
        response = entry.get("response") if isinstance(entry, dict) else None
        outcome = response.get("outcome") if isinstance(response, dict) else None
        failure = _failure(record, outcome if isinstance(outcome, dict) else None)
        if failure is not None:
            failures.append((failure, record))
    sent = len(_list(request.get("entry")))
    if not failures and len(entries) == sent:
        return
    if failures:
        worst, first = max(failures, key=lambda failure: not failure[0].retryable)  # the first final one, if any
        named = "; ".join(_named(record) for _, record in failures[:NAMED_IN_MESSAGE])
        more = f" and {len(failures) - NAMED_IN_MESSAGE} more" if len(failures) > NAMED_IN_MESSAGE else ""
        raise worst(f"{len(failures)} of {sent} entries of the {kind} failed: {named}{more}",
                    status=status_code(first["status"]), entries=entries,
                    retry_after=retry_after if worst.retryable else None)
    raise EhrUnavailable(f"the EHR answered {len(entries)} entries for the {sent} of the {kind}", entries=entries,
                         retry_after=retry_after)
