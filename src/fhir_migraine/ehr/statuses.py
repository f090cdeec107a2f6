"""What an EHR's HTTP status means for the request that got it, with its OperationOutcome: one
table, used for whole answers (``client.translate_status``) and for each entry of a transaction
or batch answer (``answers.check_answer``).

- 2xx: done.
- 405, 501, 505, or an OperationOutcome with an error issue of code ``not-supported``: the EHR
  does not support what was asked, so sending it again cannot succeed (``EhrUnsupported``):
  RFC 9110 sections 15.5.6 (405 Method Not Allowed: the method is not supported by the target),
  15.6.2 (501 Not Implemented: the server does not support the functionality required) and
  15.6.6 (505 HTTP Version Not Supported); FHIR R4 IssueType ``not-supported``.
- 413, or an OperationOutcome with an error issue ``too-costly``: the Bundle is too large for the
  EHR (RFC 9110 section 15.5.14; FHIR R4 IssueType ``too-costly``): ``EhrTooLarge``, final as sent,
  split smaller by the worker.
- 408, 425, 429 and any other 5xx: try again later (``EhrUnavailable``); 409, a write that raced
  another, too (``EhrConflict``).
- 401 (after one fresh token) and 403: our credentials are refused (``EhrAuthError``).
- Any other status: the request itself is refused (``EhrRejected``).
"""

from __future__ import annotations

import re
from typing import Any

from fhir_migraine import metrics
from fhir_migraine.errors import (
    EhrAuthError,
    EhrConflict,
    EhrError,
    EhrRejected,
    EhrTooLarge,
    EhrUnavailable,
    EhrUnsupported,
)

#: The statuses that do not follow their class's rule (4xx final, 5xx retryable).
STATUS_MEANING: dict[int, type[EhrError]] = {
    401: EhrAuthError,  # after one fresh token
    403: EhrAuthError,
    405: EhrUnsupported,  # Method Not Allowed: the interaction is not supported on this URL
    408: EhrUnavailable,  # Request Timeout
    409: EhrConflict,  # a concurrent create of the same resource (HAPI's placeholder references)
    413: EhrTooLarge,  # Content Too Large: the Bundle may pass in smaller parts
    425: EhrUnavailable,  # Too Early
    429: EhrUnavailable,  # Too Many Requests
    501: EhrUnsupported,  # Not Implemented: retried for ever it would never pass
    505: EhrUnsupported,  # HTTP Version Not Supported
}

_STATUS = re.compile(r"\s*([1-5][0-9]{2})(?:\s|$)")


def status_code(text: object) -> int | None:
    """The code of a Bundle ``entry.response.status`` ("201 Created", "412"); None when it has none."""
    if isinstance(text, int):
        return text if 100 <= text <= 599 else None
    found = _STATUS.match(text) if isinstance(text, str) else None
    return int(found.group(1)) if found else None


def has_error(outcome: dict[str, Any] | None, code: str) -> bool:
    """Whether an OperationOutcome has an error (or fatal) issue of ``code``."""
    issues = outcome.get("issue") if isinstance(outcome, dict) else None
    return any(
        isinstance(issue, dict) and issue.get("code") == code and issue.get("severity") in ("error", "fatal")
        for issue in (issues if isinstance(issues, list) else [])
    )


def not_supported(outcome: dict[str, Any] | None) -> bool:
    """Whether an OperationOutcome says, as an error, that what was asked is not supported."""
    return has_error(outcome, "not-supported")


def meaning(status: int, outcome: dict[str, Any] | None = None) -> type[EhrError]:
    """The EhrError class of a status that is not a success, given the OperationOutcome with it.
    A ``not-supported`` issue makes any status but 401/403 permanent; a ``too-costly`` one on a 4xx
    says the request was too large."""
    found = STATUS_MEANING.get(status) or (EhrUnavailable if 500 <= status <= 599 else EhrRejected)
    if found is not EhrAuthError and not_supported(outcome):
        return EhrUnsupported
    if found is EhrRejected and has_error(outcome, "too-costly"):
        return EhrTooLarge
    return found


def outcome_summary(outcome: dict[str, Any] | None) -> str:
    """The diagnostics (or details text) of an OperationOutcome's issues, joined, at most 500 characters."""
    issues = outcome.get("issue") if isinstance(outcome, dict) else None
    texts = [
        issue.get("diagnostics") or (issue.get("details") or {}).get("text", "")
        for issue in (issues if isinstance(issues, list) else []) if isinstance(issue, dict)
    ]
    return "; ".join(t for t in texts if isinstance(t, str) and t)[:500]


def outcome_class(error: EhrError) -> str:
    """The class a failed call to the EHR is counted under in the metrics (a delivery, a request):
    the EHR's status class (``4xx``, ``5xx``; a refused entry of a transaction gives its own
    status), ``network`` for a passing failure with no status (no answer came, or one that could
    not be read), ``other`` for a final one (no patient matched an identifier, several did)."""
    if error.status is not None:
        return metrics.status_class(error.status)
    return "network" if isinstance(error, EhrUnavailable) else "other"
