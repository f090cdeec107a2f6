"""The one exception hierarchy of fhir-migraine.

    FhirMigraineError
    ├── InputError        input breaks a contract (422, exit 1); carries every problem with its path
    │   ├── LaunchRefused     a SMART launch or app session that cannot go on (400, exit 1)
    │   ├── HookRefused       a CDS Hooks call whose body breaks the hook's contract (400, exit 1)
    │   ├── UnreadableInput   not JSON/YAML at all, or empty (400, exit 1)
    │   ├── TooLarge          more than a request may carry (413, exit 1)
    │   └── UnsupportedMediaType  a body of a type the endpoint does not take (415, exit 1)
    ├── ProfileError      a FHIR resource breaks a profile (422, exit 1)
    ├── NotFound          a named thing (protocol, outbox item) does not exist (404, exit 1)
    ├── Conflict          the request contradicts what is stored (409, exit 1)
    ├── RequestTimeout    the client did not send its request in time (408, exit 1)
    ├── ConfigError       the service or CLI is configured wrongly (500 at start-up, exit 2)
    └── EhrError          the EHR could not be reached or refused (502, exit 3)
        ├── EhrUnavailable    retryable: connection error, timeout, 408, 425, 429, 5xx
        │   ├── EhrTimeout    retryable: the EHR did not answer within our time-out
        │   └── EhrConflict   retryable: 409, a write that raced another one (a concurrent create)
        ├── EhrRejected       not retryable: other 4xx; carries the EHR's OperationOutcome
        │   ├── EhrUnsupported    not retryable: 405, 501, 505 or an OperationOutcome `not-supported`
        │   ├── EhrTooLarge       not retryable as it is: 413 or `too-costly` (a smaller Bundle may pass)
        │   ├── AmendmentRefused  not retryable: changed content the EHR will not update (409)
        │   ├── NothingToWithdraw not retryable: the order or diary entry to withdraw is not in the EHR (404)
        │   └── PatientAmbiguous  not retryable: a patient identifier matches several Patients (409)
        ├── PatientUnknown    retryable: no Patient in the EHR has the identifier (yet) (404)
        └── EhrAuthError      the EHR refused our credentials, or the token endpoint failed

Each class sets ``http_status``, ``issue_code`` (FHIR IssueType) and ``exit_code`` once; the edges
(Flask error handler, CLI) turn them into problem+json, OperationOutcome or an exit status.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

EXIT_OK = 0
EXIT_INVALID = 1
EXIT_USAGE = 2
EXIT_EHR = 3
EXIT_STORE = 4


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input, located by a JSON path such as ``$.steps[0].dose``, and
    for line- or row-based files also by ``location`` (``line 5``, ``row 3, column dose``)."""

    path: str
    message: str
    location: str | None = None

    def as_dict(self) -> dict[str, str]:
        found = {"path": self.path, "message": self.message}
        if self.location:
            found["location"] = self.location
        return found

    def __str__(self) -> str:
        where = f"{self.location} ({self.path})" if self.location else self.path
        return f"{where}: {self.message}"


class FhirMigraineError(Exception):
    """Base of every error the project raises on purpose."""

    http_status = 500
    issue_code = "exception"
    exit_code = EXIT_INVALID
    title = "Error"

    def __init__(self, message: str, problems: Iterable[Problem] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.problems = list(problems)

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        lines = [self.message] + [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class InputError(FhirMigraineError):
    """The input breaks its contract; every problem carries the JSON path of the field."""

    http_status = 422
    issue_code = "invalid"
    title = "Invalid input"

    @classmethod
    def of(cls, problems: Iterable[Problem], what: str = "input") -> InputError:
        problems = list(problems)
        noun = "problem" if len(problems) == 1 else "problems"
        return cls(f"The {what} is invalid ({len(problems)} {noun}).", problems)


class LaunchRefused(InputError):
    """A SMART launch or app request that cannot go on: an unknown or expired ``state`` or session,
    an ``iss`` the service does not trust, a token without the launched patient."""

    http_status = 400
    title = "Launch refused"


class HookRefused(InputError):
    """A CDS Hooks call that cannot be answered: a body that is not a hook request, a hook other
    than the service's, a prefetch value that is not a resource or Bundle."""

    http_status = 400
    title = "CDS Hooks request refused"


class UnreadableInput(InputError):
    """The input is not JSON (or YAML) at all, or is empty."""

    http_status = 400
    issue_code = "structure"
    title = "Unreadable input"


class TooLarge(InputError):
    """The request carries more than the service takes in one request (bytes or entries)."""

    http_status = 413
    issue_code = "too-costly"
    title = "Request too large"


class UnsupportedMediaType(InputError):
    """The body's Content-Type is not one the endpoint reads."""

    http_status = 415
    issue_code = "not-supported"
    title = "Unsupported media type"


class ProfileError(FhirMigraineError):
    """A FHIR resource does not conform to its profile; carries the OperationOutcome."""

    http_status = 422
    issue_code = "processing"
    title = "Resource does not conform to its profile"

    def __init__(self, message: str, outcome: dict[str, Any]) -> None:
        problems = [
            Problem(", ".join(i.get("expression", ["$"])), i.get("diagnostics", ""))
            for i in outcome.get("issue", [])
        ]
        super().__init__(message, problems)
        self.outcome = outcome


class NotFound(FhirMigraineError):
    """A named thing (a protocol, an outbox item) does not exist."""

    http_status = 404
    issue_code = "not-found"
    title = "Not found"


class Conflict(FhirMigraineError):
    """The request contradicts what is stored (a protocol version changed under the same number,
    an outbox item that is not in a state the action needs)."""

    http_status = 409
    issue_code = "conflict"
    title = "Conflict"


class RequestTimeout(FhirMigraineError):
    """The client took longer than the read time-out to send its request headers or body."""

    http_status = 408
    issue_code = "timeout"
    title = "Request timeout"


class ConfigError(FhirMigraineError):
    """The configuration is wrong or incomplete."""

    http_status = 500
    issue_code = "exception"
    exit_code = EXIT_USAGE
    title = "Configuration error"


class StoreUnavailable(FhirMigraineError):
    """The service's own database (PostgreSQL) cannot be reached now; retry later. Nothing was
    accepted by the request that got this answer."""

    http_status = 503
    issue_code = "transient"
    exit_code = EXIT_STORE
    title = "Store unavailable"


class EhrError(FhirMigraineError):
    """The EHR could not be reached or refused the request."""

    http_status = 502
    issue_code = "transient"
    exit_code = EXIT_EHR
    title = "EHR error"
    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        outcome: dict[str, Any] | None = None,
        retry_after: float | None = None,
        entries: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.outcome = outcome
        self.retry_after = retry_after
        self.entries = entries  # a transaction or batch answer: the outcome of each of its entries


class EhrUnavailable(EhrError):
    """Retryable: connection error, timeout, 408, 425, 429 or 5xx."""

    http_status = 503
    retryable = True


class EhrTimeout(EhrUnavailable):
    """Retryable: the EHR did not accept the connection, or did not answer, within our time-out."""

    issue_code = "timeout"


class EhrConflict(EhrUnavailable):
    """Retryable: the EHR answered 409, a write that raced another (two transactions creating the
    same placeholder Patient at once); the same request passes once the other has committed."""

    issue_code = "conflict"


class EhrRejected(EhrError):
    """Not retryable: the EHR answered with a 4xx other than 408/409/425/429; carries its OperationOutcome."""

    issue_code = "processing"


class EhrUnsupported(EhrRejected):
    """Not retryable: the EHR does not support what was asked (405, 501, 505, or an OperationOutcome
    with issue code ``not-supported``); sending it again cannot succeed."""

    issue_code = "not-supported"


class EhrTooLarge(EhrRejected):
    """Not retryable as it was sent: the EHR refused a Bundle for its size (413 Content Too Large,
    RFC 9110 section 15.5.14, or an OperationOutcome ``too-costly``); the same entries in smaller
    Bundles may pass."""

    issue_code = "too-costly"


class AmendmentRefused(EhrRejected):
    """Not retryable: a resource re-sent with changed content that the EHR will not update (it
    advertises no update of that type, or refuses it); ``changed`` names the elements that differ.
    The outbox item ends ``conflict``, never ``sent`` while the EHR keeps the old content."""

    http_status = 409
    issue_code = "conflict"

    def __init__(self, message: str, *, changed: list[str], **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.changed = changed


class NothingToWithdraw(EhrRejected):
    """Not retryable: the order to cancel or the diary entry to retract is not in the EHR (it was
    never delivered, or was removed there)."""

    http_status = 404
    issue_code = "not-found"


class PatientAmbiguous(EhrRejected):
    """Not retryable: a subject given by identifier matches several Patients in the EHR; which one is
    meant cannot be guessed, so nothing is written."""

    http_status = 409
    issue_code = "multiple-matches"


class PatientUnknown(EhrError):
    """Retryable: no Patient in the EHR carries the identifier a subject is given by (it may be
    registered later: an outbox item waits and asks again)."""

    http_status = 404
    issue_code = "not-found"
    retryable = True


class EhrAuthError(EhrError):
    """The EHR or its token endpoint refused the credentials."""

    issue_code = "security"
