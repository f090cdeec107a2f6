"""Size and type limits at the edge: a body above FHIR_MIGRAINE_MAX_BODY_BYTES is refused with a
413 before it is read (the worker's memory does not grow by its size), a chunked one while it is
read; a POST or PUT body of a type the endpoint does not read is a 415, never queued."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.faultproxy import FaultProxy
from tests.integration.test_kill import Service
from tests.security.edge import TOKEN, read_all, running_service, worker_pids

pytestmark = pytest.mark.ehr
MIB = 1024 * 1024
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, ehr_url: str) -> Iterator[tuple[Service, FaultProxy]]:
    with running_service(tmp_path_factory.mktemp("limits"), ehr_url) as running:
        yield running


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_a_50_mb_body_is_refused_with_413_without_the_workers_memory_growing_by_its_size(
    edge: tuple[Service, FaultProxy],
) -> None:
    service, _ = edge
    headers = {**AUTH, "Content-Type": "application/json"}
    for _ in range(6):  # both workers take the same path once first: their first-request allocations are done
        requests.post(f"{service.url}/diary", data=b" " * (5 * MIB), headers=headers, timeout=60)
    workers = worker_pids(service)
    before = {pid: rss_bytes(pid) for pid in workers}
    body = b"[" + b" " * (50 * MIB) + b"]"
    answer = requests.post(f"{service.url}/diary", data=body, timeout=60,
                           headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/problem+json"
    assert answer.json()["errors"][0]["path"] == "$"
    grown = max(rss_bytes(pid) - before[pid] for pid in workers)
    assert grown < 20 * MIB, f"a worker grew by {grown / MIB:.1f} MiB"  # reading the body would be 50 MiB and more


def test_the_413_comes_from_content_length_before_the_body_is_sent(edge: tuple[Service, FaultProxy]) -> None:
    service, _ = edge
    head = (f"POST /orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {50 * MIB}\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", service.port), timeout=10) as sock:
        sock.sendall(head)  # and not one byte of the body
        answer = read_all(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:100]


def test_a_chunked_body_is_refused_with_413_once_it_passes_the_limit(edge: tuple[Service, FaultProxy]) -> None:
    service, _ = edge

    def chunks() -> Iterator[bytes]:
        yield b"["
        for _ in range(6):
            yield b" " * MIB
        yield b"]"

    answer = requests.post(f"{service.url}/diary", data=chunks(), timeout=60,
                           headers={**AUTH, "Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(("method", "path"), [("POST", "/orders"), ("POST", "/diary"), ("POST", "/validate"),
                                              ("POST", "/fhir/$validate")])
def test_json_sent_as_text_plain_is_a_415_and_nothing_is_queued(edge: tuple[Service, FaultProxy], method: str,
                                                                  path: str) -> None:
    service, _ = edge
    before = service.call("GET", "/outbox").json()["counts"]
    answer = requests.request(method, f"{service.url}{path}", data=b'{"resourceType": "Bundle"}', timeout=30,
                              headers={**AUTH, "Content-Type": "text/plain"})
    assert answer.status_code == 415
    if path.startswith("/fhir/"):
        assert answer.headers["Content-Type"] == "application/fhir+json"
        assert answer.json()["issue"][0]["expression"] == ["Content-Type"]
    else:
        assert answer.headers["Content-Type"] == "application/problem+json"
        assert answer.json()["errors"][0]["path"] == "Content-Type"
    assert service.call("GET", "/outbox").json()["counts"] == before


def test_each_endpoint_takes_its_own_types() -> None:
    from fhir_migraine.api.limits import body_types

    assert body_types("/orders") == {"application/json"}
    assert body_types("/validate") == body_types("/fhir/<resource_type>/$validate") == {
        "application/json", "application/fhir+json"}
    assert {"application/yaml", "application/json"} <= body_types("/protocols/<protocol_id>")
    assert body_types("/imports") == {"application/x-ndjson"}


def test_fhir_json_is_taken_where_fhir_is_taken(edge: tuple[Service, FaultProxy]) -> None:
    service, _ = edge
    answer = requests.post(f"{service.url}/validate", data=b'{"resourceType": "Patient"}', timeout=30,
                           headers={**AUTH, "Content-Type": "application/fhir+json"})
    assert answer.status_code == 200
    assert answer.json()["resourceType"] == "OperationOutcome"
