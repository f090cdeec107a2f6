"""The metrics' labels: the FHIR interaction of an EHR call read from its method and URL shape (never
the URL), status classes, methods; the EHR call histogram as ``FhirClient`` fills it; and the
outbox collector when the store cannot be read."""

from __future__ import annotations

import io
from typing import Any

import pytest
import requests

from fhir_migraine import metrics
from fhir_migraine.ehr.client import FhirClient, interaction_of
from fhir_migraine.ehr.worker import delivery_class
from fhir_migraine.errors import EhrConflict, EhrRejected, EhrTimeout, EhrUnavailable, PatientUnknown, StoreUnavailable
from tests.api.test_metrics import parse, value
from tests.unit.test_ehr_answers import PART, Session

BASE = "http://ehr.test/fhir"


@pytest.mark.parametrize(("method", "url", "expected"), [
    ("GET", f"{BASE}/metadata", "capabilities"),
    ("POST", BASE, "transaction"),
    ("POST", f"{BASE}/", "transaction"),
    ("GET", f"{BASE}/Observation/123", "read"),
    ("GET", f"{BASE}/Observation/123/_history/4", "vread"),
    ("GET", f"{BASE}/Observation/123/_history", "history"),
    ("GET", f"{BASE}/Observation?identifier=urn:x|MRN-1&patient=Patient/9", "search"),
    ("POST", f"{BASE}/Observation/_search", "search"),
    ("GET", f"{BASE}?_getpages=abc&_getpagesoffset=20", "search"),
    ("POST", f"{BASE}/Observation", "create"),
    ("PUT", f"{BASE}/Observation/123", "update"),
    ("PATCH", f"{BASE}/Observation/123", "patch"),
    ("DELETE", f"{BASE}/Observation/123", "delete"),
    ("POST", f"{BASE}/Observation/$validate", "operation"),
    ("GET", f"{BASE}/Patient/9/$everything", "operation"),
    ("GET", "https://ehr.test/fhir/Observation/123?_format=json", "read"),
    ("OPTIONS", BASE, "other"),
])
def test_the_interaction_is_read_from_the_method_and_the_url_shape(method: str, url: str, expected: str) -> None:
    assert interaction_of(method, url, BASE) == expected


def test_a_posted_bundle_is_a_transaction_or_a_batch_by_its_type() -> None:
    assert interaction_of("POST", BASE, BASE, bundle_type="batch") == "batch"
    assert interaction_of("POST", BASE, BASE, bundle_type="transaction") == "transaction"
    assert interaction_of("POST", BASE, BASE, bundle_type="searchset") == "transaction"


def test_status_classes_and_methods_are_bounded() -> None:
    assert [metrics.status_class(s) for s in (200, 201, 302, 404, 503, None, 999)] == \
        ["2xx", "2xx", "3xx", "4xx", "5xx", "network", "other"]
    assert [metrics.method_label(m) for m in ("GET", "POST", "BREW", "get")] == ["GET", "POST", "other", "other"]


def test_a_failed_part_is_counted_by_the_class_of_its_error() -> None:
    assert delivery_class(EhrUnavailable("busy", status=503)) == "5xx"
    assert delivery_class(EhrUnavailable("too many", status=429)) == "4xx"
    assert delivery_class(EhrConflict("raced", status=409)) == "4xx"
    assert delivery_class(EhrRejected("refused", status=422)) == "4xx"
    assert delivery_class(EhrUnavailable("could not connect")) == "network"
    assert delivery_class(EhrTimeout("no answer in time")) == "network"
    assert delivery_class(PatientUnknown("no patient has the identifier")) == "other"


class Refusing(Session):
    """Answers as scripted, but the connection is refused for URLs holding ``down``."""

    def request(self, method: str, url: str, *args: Any, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if "down" in url:
            raise requests.exceptions.ConnectionError("refused")
        return super().request(method, url, *args, **kwargs)


def test_each_ehr_call_is_timed_by_interaction_and_outcome_never_by_url() -> None:
    metadata = {"resourceType": "CapabilityStatement", "status": "active"}
    outcome = {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": "not-found"}]}
    answer = {"resourceType": "Bundle", "type": "transaction-response",
              "entry": [{"response": {"status": "201 Created", "location": f"{e['resource']['resourceType']}/7/_history/1"}}
                        for e in PART["entry"]]}
    client = FhirClient(BASE, session=Refusing((200, metadata), (200, answer), (404, outcome)))
    before = parse(metrics.exposition().decode())
    client.metadata()
    client.transaction(PART)
    with pytest.raises(EhrRejected):
        client.read("Observation", "secret-id-31")
    with pytest.raises(EhrUnavailable):
        client.read("Observation", "down")
    text = metrics.exposition().decode()
    after = parse(text)

    def grew(interaction: str, outcome: str) -> float:
        name = "fhir_migraine_ehr_request_duration_seconds_count"
        return (value(after, name, interaction=interaction, status_class=outcome)
                - value(before, name, interaction=interaction, status_class=outcome))

    assert grew("capabilities", "2xx") == 1
    assert grew("transaction", "2xx") == 1
    assert grew("read", "4xx") == 1
    assert grew("read", "network") == 1
    assert "secret-id-31" not in text and "ehr.test" not in text


def test_an_unreadable_outbox_is_reported_not_raised() -> None:
    def broken() -> metrics.QueueFigures:
        raise StoreUnavailable("the database does not answer")

    samples = parse(metrics.exposition(broken).decode())
    assert value(samples, "fhir_migraine_outbox_readable") == 0
    assert not any(name == "fhir_migraine_outbox_items" for (name, _) in samples)


def test_the_multiprocess_folder_is_private_and_removed_only_by_its_creator(monkeypatch: pytest.MonkeyPatch,
                                                                            tmp_path: Any) -> None:
    import os
    import stat
    import tempfile

    from prometheus_client import values

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)  # this process keeps its values in memory
    named: dict[str, str | None] = {}
    folder = metrics.prepare_multiprocess(named.__setitem__)
    try:
        assert named == {metrics.MULTIPROC_ENV: folder} and folder.startswith(str(tmp_path))
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
        metrics.remove_multiprocess(folder, os.getpid() + 1, named.__setitem__)  # not its creator: a worker leaving
        assert os.path.isdir(folder) and named[metrics.MULTIPROC_ENV] == folder
        metrics.remove_multiprocess(folder, os.getpid(), named.__setitem__)
        assert not os.path.exists(folder) and named[metrics.MULTIPROC_ENV] is None
    finally:
        monkeypatch.setattr(metrics, "_folder", None)


def test_the_steps_of_a_bulk_export_are_timed_under_their_own_interactions() -> None:
    from tests.unit.test_bulk_client import STATUS, answer
    from tests.unit.test_bulk_client import client as bulk_client

    body = b'{"resourceType": "Observation", "id": "secret-obs-1"}\n'
    ehr, _ = bulk_client(answer(202, **{"Content-Location": STATUS}), answer(202, **{"Retry-After": "1"}),
                         answer(200, {"transactionTime": "2026-11-30T10:00:00Z", "output": []}),
                         answer(200, body), answer(202))
    before = parse(metrics.exposition().decode())
    ehr.kick_off("Group/group-secret-7/$export", {"_type": "Observation"})
    ehr.export_status(STATUS)
    ehr.export_status(STATUS)
    ehr.download("https://ehr.example/fhir/Binary/1", io.BytesIO(), authorized=True, limit=len(body))
    ehr.delete_export(STATUS)
    text = metrics.exposition().decode()
    after = parse(text)
    name = "fhir_migraine_ehr_request_duration_seconds_count"
    grew = {i: value(after, name, interaction=i, status_class="2xx") - value(before, name, interaction=i, status_class="2xx")
            for i in ("export", "export-status", "export-download", "export-delete")}
    assert grew == {"export": 1, "export-status": 2, "export-download": 1, "export-delete": 1}
    assert "group-secret-7" not in text and "secret-obs-1" not in text and "_jobId" not in text
