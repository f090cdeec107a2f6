"""Every ``requests`` failure and every EHR status maps to one EhrError subclass, in one place."""

from __future__ import annotations

import inspect

import pytest
import requests

from fhir_migraine.ehr.client import STATUS_MEANING, retry_after, translate_exception, translate_status
from fhir_migraine.errors import (
    EhrAuthError,
    EhrConflict,
    EhrError,
    EhrRejected,
    EhrTimeout,
    EhrTooLarge,
    EhrUnavailable,
    EhrUnsupported,
)


def _all_request_exceptions() -> list[type[requests.RequestException]]:
    return [
        cls
        for _, cls in inspect.getmembers(requests.exceptions, inspect.isclass)
        if issubclass(cls, requests.RequestException)
    ]


@pytest.mark.parametrize("cls", _all_request_exceptions(), ids=lambda c: c.__name__)
def test_every_requests_exception_becomes_an_ehr_error(cls: type[requests.RequestException]) -> None:
    exc = cls("boom", "doc", 0) if issubclass(cls, ValueError) else cls("boom")
    error = translate_exception(exc)
    assert isinstance(error, EhrError)
    assert type(error) in (EhrUnavailable, EhrTimeout, EhrRejected)
    assert (type(error) is EhrTimeout) is issubclass(cls, requests.exceptions.Timeout)
    assert "boom" not in error.message, "messages come from the project, not from the URL or payload"


@pytest.mark.parametrize(
    ("cls", "retryable"),
    [
        (requests.exceptions.ConnectTimeout, True),
        (requests.exceptions.ReadTimeout, True),
        (requests.exceptions.ConnectionError, True),
        (requests.exceptions.ChunkedEncodingError, True),
        (requests.exceptions.SSLError, True),
        (requests.exceptions.InvalidURL, False),
        (requests.exceptions.MissingSchema, False),
    ],
)
def test_network_failures_are_retryable_and_bad_urls_are_not(cls, retryable: bool) -> None:
    assert translate_exception(cls("x")).retryable is retryable


def _response(status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    response.reason = "Reason"
    return response


OUTCOME = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"processing","diagnostics":"HAPI-0001: bad"}]}'


@pytest.mark.parametrize("status", range(400, 600))
def test_every_error_status_maps_to_one_class(status: int) -> None:
    error = translate_status(_response(status, OUTCOME))
    if status in (405, 501, 505):  # the EHR does not support it: sending it again cannot pass
        expected: type[EhrError] = EhrUnsupported
    elif status in (408, 425, 429) or status >= 500:
        expected = EhrUnavailable
    elif status == 409:  # a concurrent create: the EHR says "try again", not "your data is wrong"
        expected = EhrConflict
    elif status == 413:  # too large as sent: the worker splits it
        expected = EhrTooLarge
    elif status in (401, 403):
        expected = EhrAuthError
    else:
        expected = EhrRejected
    assert type(error) is expected
    assert error.retryable is ((status in (408, 409, 425, 429) or status >= 500) and status not in (501, 505))
    assert error.status == status
    assert error.outcome is not None and "HAPI-0001: bad" in error.message


def test_a_409_is_retried_and_a_412_is_final() -> None:
    conflict = translate_status(_response(409, OUTCOME, {"Retry-After": "3"}))
    assert isinstance(conflict, EhrConflict) and conflict.retryable and conflict.retry_after == 3.0
    several = translate_status(_response(412, OUTCOME, {"Retry-After": "3"}))
    assert isinstance(several, EhrRejected) and not several.retryable and several.retry_after is None


def test_the_status_table_names_only_error_statuses_and_known_classes() -> None:
    assert all(400 <= status <= 599 for status in STATUS_MEANING)
    assert {s for s in STATUS_MEANING if s >= 500} == {501, 505}, "only the 5xx that are final"
    assert set(STATUS_MEANING.values()) <= {EhrAuthError, EhrConflict, EhrTooLarge, EhrUnavailable, EhrUnsupported}


def test_429_carries_retry_after_in_seconds() -> None:
    error = translate_status(_response(429, b"", {"Retry-After": "7"}))
    assert error.retryable and error.retry_after == 7.0


def test_retry_after_may_be_an_http_date() -> None:
    assert retry_after("Wed, 25 Nov 2026 10:00:30 GMT", now=1795600800.0) == pytest.approx(30.0)
    assert retry_after("soon") is None


def test_a_retry_after_date_is_measured_on_the_ehrs_clock_when_it_sends_one() -> None:
    # The EHR's clock is a year behind ours: its Retry-After date is still 30 s after its Date.
    headers = {"Retry-After": "Tue, 25 Nov 2025 10:00:30 GMT", "Date": "Tue, 25 Nov 2025 10:00:00 GMT"}
    assert translate_status(_response(503, b"", headers)).retry_after == pytest.approx(30.0)
    without_date = translate_status(_response(503, b"", {"Retry-After": "Tue, 25 Nov 2025 10:00:30 GMT"}))
    assert without_date.retry_after == 0.0, "a date already past on our clock: no wait"


def test_a_too_costly_outcome_says_the_request_was_too_large() -> None:
    outcome = b'{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"too-costly"}]}'
    assert type(translate_status(_response(400, outcome))) is EhrTooLarge
    assert type(translate_status(_response(503, outcome))) is EhrUnavailable  # busy, not too large
