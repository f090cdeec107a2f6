"""Slow clients and a hanging EHR cannot stall the service: anonymous connections trickling their
headers hold no request thread, /ready answers from the probe's last look instead of waiting for
the EHR, and a client that trickles its headers or body is cut off after the read time-out."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.faultproxy import FaultProxy, Slow
from tests.integration.test_kill import Service
from tests.security.edge import TOKEN, Trickle, running_service

pytestmark = pytest.mark.ehr
READ_TIMEOUT = 4.0
# Generous bounds: the promise is "within 1 s" for health and readiness, and "after the read
# time-out" (checked once a second by the worker's event loop) for a slow client.
ANSWER_WITHIN_S = 1.0
CUT_OFF_WITHIN_S = READ_TIMEOUT + 3.0


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, ehr_url: str) -> Iterator[tuple[Service, FaultProxy]]:
    with running_service(tmp_path_factory.mktemp("slow"), ehr_url, READ_TIMEOUT=str(READ_TIMEOUT),
                         EHR_PROBE_INTERVAL="0.5", EHR_PROBE_TIMEOUT="0.5") as running:
        yield running


def timed_get(url: str) -> tuple[float, requests.Response]:
    started = time.monotonic()
    answer = requests.get(url, timeout=ANSWER_WITHIN_S + 4)
    return time.monotonic() - started, answer


def test_twenty_slow_header_clients_and_a_hanging_ehr_leave_health_and_ready_answering(
    edge: tuple[Service, FaultProxy],
) -> None:
    service, proxy = edge
    proxy.set_mode(Slow(60.0))  # the EHR hangs: every answer held for a minute
    # 20 anonymous clients trickle a never-ending header block, more than all request threads.
    slow = [Trickle(service.port, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Pad: ", b"a" * 100, every=0.5)
            for _ in range(20)]
    # and 3 anonymous /ready calls, which used to wait for the EHR inline.
    readies = [threading.Thread(target=lambda: requests.get(f"{service.url}/ready", timeout=10), daemon=True)
               for _ in range(3)]
    try:
        for client in slow:
            client.start()
        for call in readies:
            call.start()
        time.sleep(1.0)  # the slow clients are connected and trickling
        deadline = time.monotonic() + 2.5
        unreachable = False
        while time.monotonic() < deadline:  # well within the read time-out: they are all still open
            took, health = timed_get(f"{service.url}/health")
            assert health.status_code == 200 and took < ANSWER_WITHIN_S, took
            took, ready = timed_get(f"{service.url}/ready")
            assert ready.status_code == 200 and took < ANSWER_WITHIN_S, took
            state = ready.json()["ehr"]
            assert state["probe_age_s"] is None or state["probe_age_s"] < 5
            unreachable = unreachable or state["reachable"] is False
            time.sleep(0.2)
        assert all(c.ended is None for c in slow), "the slow clients were still connected throughout"
        assert unreachable, "the probe saw the hanging EHR time out"
    finally:
        for client in slow:
            client.stop.set()
        proxy.set_mode(None)


def test_a_client_trickling_its_headers_is_cut_off_after_the_read_timeout(edge: tuple[Service, FaultProxy]) -> None:
    service, _ = edge
    slowloris = Trickle(service.port, b"GET /health HTTP/1.1\r\n", b"X-Pad: " + b"a" * 100, every=1.0)
    slowloris.start()
    slowloris.join(CUT_OFF_WITHIN_S + 5)
    assert slowloris.ended is not None, "the slow client was never cut off"
    assert READ_TIMEOUT - 0.5 <= slowloris.seconds() <= CUT_OFF_WITHIN_S, slowloris.seconds()
    head, _, body = slowloris.answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), slowloris.answer[:200]
    assert b"Content-Type: application/problem+json" in head
    assert json.loads(body)["status"] == 408


def test_a_client_trickling_its_body_is_cut_off_after_the_read_timeout(edge: tuple[Service, FaultProxy]) -> None:
    service, _ = edge
    body = b'{"order_id": "' + b"a" * 200 + b'"}'
    head = (f"POST /orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    slow = Trickle(service.port, head, body, every=1.0)
    slow.start()
    slow.join(CUT_OFF_WITHIN_S + 5)
    assert slow.ended is not None, "the slow body was never cut off"
    assert READ_TIMEOUT - 0.5 <= slow.seconds() <= CUT_OFF_WITHIN_S, slow.seconds()
    status_line, _, rest = slow.answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), slow.answer[:200]
    assert json.loads(rest.partition(b"\r\n\r\n")[2])["status"] == 408


def test_a_large_upload_at_a_sound_rate_outlasts_the_read_timeout(edge: tuple[Service, FaultProxy]) -> None:
    """The body gets a second per MiB its Content-Length announces: 12 MiB sent steadily at about
    2 MiB/s take longer than the read time-out and still arrive."""
    service, _ = edge
    line = json.dumps({"notes": "x" * 10_000}).encode() + b"\n"
    body = line * (12 * 1024 * 1024 // len(line))
    head = (f"POST /imports HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: application/x-ndjson\r\nContent-Length: {len(body)}\r\n\r\n").encode()
    chunk = 256 * 1024
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(head)
        for offset in range(0, len(body), chunk):
            sock.sendall(body[offset:offset + chunk])
            time.sleep(0.125)
        answer = sock.recv(65536)
    assert time.monotonic() - started > READ_TIMEOUT
    assert answer.startswith(b"HTTP/1.1 202"), answer[:300]


def test_the_body_allowance_follows_the_announced_length() -> None:
    from fhir_migraine.api.edge_worker import MIN_BODY_RATE, body_allowance

    head = b"POST /imports HTTP/1.1\r\nHost: x\r\ncontent-LENGTH:  %d \r\n\r\n"
    assert body_allowance(head % (64 * MIN_BODY_RATE), 10.0) == 74.0
    assert body_allowance(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n", 10.0) == 10.0
    # Only the header block counts: a body that mentions a length changes nothing.
    assert body_allowance(b"POST / HTTP/1.1\r\nHost: x\r\n\r\nx\r\nContent-Length: 999999999\r\n", 10.0) == 10.0
