"""A transaction's answer is read entry by entry, and statuses that cannot pass are final: the real
FHIR client against scripted HTTP answers, through the outbox worker with a fake clock."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import requests

from fhir_migraine.config import OutboxSettings
from fhir_migraine.ehr.answers import check_answer, entry_outcomes
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.outbox import Outbox
from fhir_migraine.ehr.statuses import status_code
from fhir_migraine.ehr.worker import DAY_S, RetryPolicy, drain
from fhir_migraine.errors import EhrConflict, EhrRejected, EhrUnavailable, EhrUnsupported
from tests.unit.test_outbox import Clock

POLICY = RetryPolicy(base=1.0, cap=60.0, lease=30.0, max_attempts=0)

#: A part as the mapping makes it: a MedicationRequest, then the RequestGroup that points at it.
PART = {
    "resourceType": "Bundle", "type": "transaction",
    "entry": [
        {"fullUrl": "urn:uuid:a", "resource": {"resourceType": "MedicationRequest", "subject": {"reference": "Patient/1"}},
         "request": {"method": "POST", "url": "MedicationRequest", "ifNoneExist": "identifier=urn:x|1"}},
        {"fullUrl": "urn:uuid:b", "resource": {"resourceType": "RequestGroup", "subject": {"reference": "Patient/1"}},
         "request": {"method": "POST", "url": "RequestGroup", "ifNoneExist": "identifier=urn:x|2"}},
    ],
}
PRECONDITION = {"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "duplicate", "diagnostics": "HAPI-0958: Failed to CREATE: 2 matches for the condition"}]}
NOT_SUPPORTED = {"resourceType": "OperationOutcome", "issue": [
    {"severity": "error", "code": "not-supported", "diagnostics": "Transaction is not supported"}]}


def entry(status: str, location: str | None = None, outcome: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {"status": status}
    if location:
        response["location"] = location
    if outcome:
        response["outcome"] = outcome
    return {"response": response}


def answer(kind: str, *entries: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": kind, "entry": list(entries)}


CREATED = answer("transaction-response", entry("201 Created", "MedicationRequest/7/_history/1"),
                 entry("201 Created", "RequestGroup/8/_history/1"))
AS_BATCH_ONE_412 = answer("batch-response", entry("412 Precondition Failed", outcome=PRECONDITION),
                          entry("201 Created", "RequestGroup/8/_history/1"))


class Session(requests.Session):
    """Answers each request with the next scripted (status, body, headers); records the requests."""

    def __init__(self, *script: tuple[int, Any] | tuple[int, Any, dict[str, str]]) -> None:
        super().__init__()
        self.script = list(script)
        self.sent: list[tuple[str, str]] = []

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        self.sent.append((method, url))
        status, body, *rest = self.script.pop(0) if self.script else (200, CREATED)
        response = requests.Response()
        response.status_code = status
        response.reason = "Reason"
        response._content = body if isinstance(body, bytes) else json.dumps(body).encode()
        response.headers.update(rest[0] if rest else {"Content-Type": "application/fhir+json"})
        response.url = url
        return response


def client(*script: tuple[int, Any] | tuple[int, Any, dict[str, str]]) -> FhirClient:
    return FhirClient("http://ehr.test/fhir", session=Session(*script))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def outbox(tmp_path: Path, clock: Clock) -> Outbox:
    return Outbox(str(tmp_path / "outbox.sqlite3"), clock=clock)


# --- the client reads every entry ---------------------------------------------------------------

def test_a_transaction_response_with_every_entry_2xx_is_returned() -> None:
    assert client((200, CREATED)).transaction(PART) == CREATED


def test_a_batch_response_to_a_batch_with_every_entry_2xx_is_returned() -> None:
    batch = {**PART, "type": "batch"}
    done = answer("batch-response", entry("200 OK"), entry("201 Created"))
    assert client((200, done)).transaction(batch) == done


def test_a_transaction_answered_as_a_batch_is_final_even_when_every_entry_passed() -> None:
    as_batch = answer("batch-response", entry("201 Created", "MedicationRequest/7"), entry("201 Created", "RequestGroup/8"))
    with pytest.raises(EhrUnsupported) as caught:
        client((200, as_batch)).transaction(PART)
    assert "batch-response" in caught.value.message and "transaction-response" in caught.value.message
    assert [e["location"] for e in caught.value.entries] == ["MedicationRequest/7", "RequestGroup/8"]


@pytest.mark.parametrize("kind", ["batch-response", "searchset", "transaction"], ids=str)
def test_a_response_of_another_type_is_final(kind: str) -> None:
    with pytest.raises(EhrUnsupported) as caught:
        client((200, answer(kind, entry("201 Created"), entry("201 Created")))).transaction(PART)
    assert not caught.value.retryable and kind in caught.value.message


def test_a_batch_answered_as_a_transaction_is_final() -> None:
    with pytest.raises(EhrUnsupported):
        check_answer({**PART, "type": "batch"}, CREATED)


def test_one_412_entry_in_a_200_answer_is_final_and_names_the_entry() -> None:
    one_412 = answer("transaction-response", entry("412 Precondition Failed", outcome=PRECONDITION),
                     entry("201 Created", "RequestGroup/8/_history/1"))
    with pytest.raises(EhrRejected) as caught:
        client((200, one_412)).transaction(PART)
    error = caught.value
    assert (error.status, error.retryable) == (412, False)
    assert "1 of 2 entries" in error.message and "entry 0 (MedicationRequest) 412" in error.message
    assert error.entries == [
        {"index": 0, "resource": "MedicationRequest", "status": "412 Precondition Failed",
         "outcome": "HAPI-0958: Failed to CREATE: 2 matches for the condition", "issue_codes": ["duplicate"]},
        {"index": 1, "resource": "RequestGroup", "status": "201 Created", "location": "RequestGroup/8/_history/1"},
    ]


@pytest.mark.parametrize(
    ("statuses", "expected"),
    [
        (("503 Service Unavailable", "201 Created"), EhrUnavailable),
        (("429 Too Many Requests", "500"), EhrUnavailable),
        (("409 Conflict", "201 Created"), EhrConflict),
        (("503 Service Unavailable", "412 Precondition Failed"), EhrRejected),  # the worst decides
        (("429", "501 Not Implemented"), EhrUnsupported),
        (("405 Method Not Allowed", "201"), EhrUnsupported),
        (("201 Created", "Created"), EhrUnavailable),  # no status code: the answer cannot be read
    ],
    ids=["503", "429-500", "409", "503-412", "429-501", "405", "no-code"],
)
def test_failed_entries_are_retried_or_final_by_the_worst_status(statuses: tuple[str, str], expected: type) -> None:
    with pytest.raises(expected) as caught:
        check_answer(PART, answer("transaction-response", *(entry(s) for s in statuses)), retry_after=5.0)
    assert type(caught.value) is expected
    assert caught.value.retry_after == (5.0 if expected.retryable else None)


def test_an_entry_whose_outcome_says_not_supported_is_final_whatever_its_status() -> None:
    with pytest.raises(EhrUnsupported) as caught:
        check_answer(PART, answer("transaction-response", entry("500", outcome=NOT_SUPPORTED), entry("201")))
    assert caught.value.entries[0]["issue_codes"] == ["not-supported"]


@pytest.mark.parametrize("entries", [1, 3], ids=["fewer", "more"])
def test_an_answer_with_another_number_of_entries_is_retried(entries: int) -> None:
    with pytest.raises(EhrUnavailable) as caught:
        check_answer(PART, answer("transaction-response", *[entry("201 Created")] * entries))
    assert f"answered {entries} entries for the 2" in caught.value.message


@pytest.mark.parametrize("body", [{"resourceType": "OperationOutcome", "issue": []}, {"resourceType": "Bundle"}],
                         ids=["not-a-bundle", "no-type"])
def test_an_answer_that_is_not_a_response_bundle_is_retried(body: dict[str, Any]) -> None:
    with pytest.raises(EhrUnavailable):
        client((200, body)).transaction(PART)


@pytest.mark.parametrize(
    ("text", "code"),
    [("201 Created", 201), ("412", 412), (" 200 OK", 200), (204, 204), ("Created", None), ("2011", None),
     ("", None), (None, None), ("999 Odd", None), (42, None)],
)
def test_the_code_of_an_entry_status(text: object, code: int | None) -> None:
    assert status_code(text) == code


def test_entry_outcomes_ignore_damaged_parts_of_an_answer() -> None:
    damaged = {"resourceType": "Bundle", "type": "transaction-response",
               "entry": ["x", {"response": "y"}, {"response": {"status": 7, "location": 3, "outcome": {"issue": "z"}}}]}
    assert entry_outcomes(PART, damaged) == [
        {"index": 0, "resource": "MedicationRequest", "status": None},
        {"index": 1, "resource": "RequestGroup", "status": None},
        {"index": 2, "status": 7},
    ]


# --- the statuses the EHR cannot get past are dead at once ----------------------------------------

@pytest.mark.parametrize(
    ("status", "body"),
    [(405, b""), (501, b""), (505, b""), (400, NOT_SUPPORTED), (500, NOT_SUPPORTED), (503, NOT_SUPPORTED)],
    ids=["405", "501", "505", "400-not-supported", "500-not-supported", "503-not-supported"],
)
def test_what_the_ehr_does_not_support_is_dead_at_the_first_attempt(outbox: Outbox, status: int, body: Any) -> None:
    item_id = outbox.add("order", [PART])
    drain(outbox, client((status, body)), POLICY)
    item = outbox.get(item_id)
    assert (item.state, item.attempts) == ("dead", 1)
    assert item.last_error["type"] == "EhrUnsupported" and item.last_error["status"] == status
    assert item.last_error["retryable"] is False


def test_a_batch_response_with_one_412_entry_never_ends_sent(outbox: Outbox, clock: Clock) -> None:
    item_id = outbox.add("order", [PART])
    session = Session(*[(200, AS_BATCH_ONE_412)] * 5)
    for _ in range(5):
        drain(outbox, FhirClient("http://ehr.test/fhir", session=session), POLICY)
        clock.now += 3600
    item = outbox.get(item_id)
    assert item.state == "dead" and item.responses == [] and item.next_part == 0
    assert len(session.sent) == 1, "final: not sent again"
    assert [e["status"] for e in item.last_error["entries"]] == ["412 Precondition Failed", "201 Created"]


def test_a_failed_entry_of_a_later_part_keeps_the_parts_sent_and_names_its_entries(outbox: Outbox, clock: Clock) -> None:
    item_id = outbox.add("diary", [PART, PART])
    one_503 = answer("transaction-response", entry("201 Created"), entry("503 Service Unavailable"))
    drain(outbox, client((200, CREATED), (200, one_503)), POLICY)
    item = outbox.get(item_id)
    assert (item.state, item.next_part, item.attempts) == ("pending", 1, 1)
    assert item.last_error["type"] == "EhrUnavailable" and item.last_error["status"] == 503
    assert item.last_error["entries"][1]["status"] == "503 Service Unavailable"
    clock.now += 3600
    drain(outbox, client((200, CREATED)), POLICY)
    assert outbox.get(item_id).state == "sent"


# --- a maximum of attempts ----------------------------------------------------------------------

def test_there_is_a_default_maximum_of_attempts() -> None:
    assert OutboxSettings().max_attempts == RetryPolicy().max_attempts > 0


def test_an_item_failing_as_often_as_allowed_is_dead_and_says_why(outbox: Outbox, clock: Clock) -> None:
    policy = RetryPolicy(base=1.0, cap=1.0, lease=30.0, max_attempts=3)
    item_id = outbox.add("order", [PART])
    session = Session(*[(503, b"")] * 10)
    for _ in range(10):
        drain(outbox, FhirClient("http://ehr.test/fhir", session=session), policy)
        clock.now += 10
    item = outbox.get(item_id)
    assert (item.state, item.attempts, len(session.sent)) == ("dead", 3, 3)
    assert item.last_error["max_attempts_reached"] is True and "gave up after 3 attempts" in item.last_error["message"]


def test_a_final_failure_does_not_claim_the_maximum_was_reached(outbox: Outbox) -> None:
    item_id = outbox.add("order", [PART])
    drain(outbox, client((422, b"")), RetryPolicy(max_attempts=1))
    assert "max_attempts_reached" not in outbox.get(item_id).last_error


# --- what is kept ---------------------------------------------------------------------------------

def test_the_purge_keeps_entry_statuses_and_locations_and_drops_their_outcomes(outbox: Outbox, clock: Clock) -> None:
    item_id = outbox.add("order", [PART])
    drain(outbox, client((200, AS_BATCH_ONE_412)), POLICY)
    outbox.revive(item_id)
    drain(outbox, client((200, CREATED)), POLICY)
    clock.now += 31 * DAY_S
    assert outbox.purge(30 * DAY_S) == [item_id]
    life = outbox.summary(item_id)["history"][0]
    assert [e.get("status") for e in life["last_error"]["entries"]] == ["412 Precondition Failed", "201 Created"]
    assert life["last_error"]["entries"][1]["location"] == "RequestGroup/8/_history/1"
    assert "HAPI-0958" not in json.dumps(outbox.summary(item_id)), "an outcome's text may quote patient data"
