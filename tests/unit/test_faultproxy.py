"""The fault proxy: pass-through, each fault as the client sees it, and what reaches the upstream."""

from __future__ import annotations

import json
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from tests.faultproxy import (
    AfterUpstream,
    CutMidResponse,
    Down,
    Fault,
    FaultProxy,
    RelativeLinks,
    Rewrite,
    Slow,
    Status,
    TooMany,
    parse_fault,
)

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Upstream:
    """A tiny EHR stand-in: echoes each request as JSON and remembers it."""

    url: str = ""
    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.calls)


def _upstream_handler(upstream: Upstream) -> type[BaseHTTPRequestHandler]:
    class Echo(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _echo(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            call = Call(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            with upstream.lock:
                upstream.calls.append(call)
            data = json.dumps({"method": call.method, "path": call.path, "body": body.decode()}).encode()
            if self.path.startswith("/fhir/Observation"):  # a searchset page with absolute links
                data = json.dumps({"resourceType": "Bundle", "type": "searchset", "link": [
                    {"relation": "self", "url": "http://upstream.example/fhir/Observation?code=1"},
                    {"relation": "next", "url": "http://upstream.example/fhir?_getpages=a&_getpagesoffset=2"},
                ]}).encode()
            self.send_response(201 if self.command == "POST" else 200)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Location", "http://upstream.example/fhir/Bundle/1")
            if self.path.startswith("/chunked"):
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for piece in (data[:10], data[10:]):
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")
            else:
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = _echo

    return Echo


class _UpstreamServer(ThreadingHTTPServer):
    block_on_close = False  # teardown must never wait on a connection a test left open
    request_queue_size = 64  # the concurrency test opens 20 connections at once


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    upstream = Upstream()
    server = _UpstreamServer(("127.0.0.1", 0), _upstream_handler(upstream))
    upstream.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield upstream
    server.shutdown()
    server.server_close()


@pytest.fixture
def proxy(upstream: Upstream) -> Iterator[FaultProxy]:
    with FaultProxy(upstream.url) as proxy:
        yield proxy


def test_a_get_with_a_query_passes_through_unchanged(proxy: FaultProxy, upstream: Upstream) -> None:
    response = requests.get(f"{proxy.url}/fhir/Patient?identifier=a%7Cb&_count=2", timeout=2)

    assert response.status_code == 200
    assert response.json() == {"method": "GET", "path": "/fhir/Patient?identifier=a%7Cb&_count=2", "body": ""}
    assert upstream.count == 1
    assert proxy.requests_seen == 1
    assert proxy.faults_applied == []


def test_a_post_body_reaches_the_upstream_and_its_answer_comes_back(proxy: FaultProxy, upstream: Upstream) -> None:
    bundle = json.dumps({"resourceType": "Bundle", "type": "transaction"})

    response = requests.post(
        f"{proxy.url}/fhir", data=bundle, headers={"Content-Type": "application/fhir+json"}, timeout=2
    )

    assert response.status_code == 201
    assert response.headers["Location"] == "http://upstream.example/fhir/Bundle/1"
    assert response.json()["body"] == bundle
    assert upstream.calls[0].body == bundle.encode()
    assert upstream.calls[0].headers["content-type"] == "application/fhir+json"


def test_the_host_is_the_upstreams_and_hop_by_hop_headers_stay_behind(proxy: FaultProxy, upstream: Upstream) -> None:
    headers = {"Connection": "keep-alive, X-Secret", "X-Secret": "1", "Proxy-Authorization": "x", "X-Keep": "2"}

    requests.get(f"{proxy.url}/fhir/metadata", headers=headers, timeout=2)

    seen = upstream.calls[0].headers
    assert seen["host"] == upstream.url.removeprefix("http://")
    assert seen["x-keep"] == "2"
    assert "x-secret" not in seen
    assert "proxy-authorization" not in seen


def test_a_chunked_request_body_is_forwarded_with_a_content_length(proxy: FaultProxy, upstream: Upstream) -> None:
    response = requests.post(f"{proxy.url}/fhir", data=iter([b"{\"a\":", b"1}"]), timeout=2)

    assert response.status_code == 201
    assert upstream.calls[0].body == b'{"a":1}'
    assert upstream.calls[0].headers["content-length"] == "7"


def test_a_chunked_upstream_answer_is_resent_with_a_content_length(proxy: FaultProxy) -> None:
    response = requests.get(f"{proxy.url}/chunked/fhir", timeout=2)

    assert response.json()["path"] == "/chunked/fhir"
    assert "Transfer-Encoding" not in response.headers
    assert response.headers["Content-Length"] == str(len(response.content))


def test_an_injected_500_does_not_reach_the_upstream(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_faults(Status(500))

    response = requests.post(f"{proxy.url}/fhir", json={"resourceType": "Bundle"}, timeout=2)

    assert response.status_code == 500
    assert response.headers["Content-Type"].startswith("application/fhir+json")
    issue = response.json()["issue"][0]
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "injected" in issue["diagnostics"]
    assert upstream.count == 0
    assert proxy.faults_applied == ["Status(500)"]


def test_faults_queued_for_posts_pass_gets_through(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_faults(Status(500), methods=["post"])

    assert requests.get(f"{proxy.url}/fhir/metadata", timeout=2).status_code == 200
    assert requests.post(f"{proxy.url}/fhir", json={"resourceType": "Bundle"}, timeout=2).status_code == 500
    assert requests.post(f"{proxy.url}/fhir", json={"resourceType": "Bundle"}, timeout=2).status_code != 500
    assert proxy.faults_applied == ["Status(500)"]


def test_an_injected_status_can_carry_its_own_body_and_headers(proxy: FaultProxy) -> None:
    proxy.set_faults(Status(503, body="down for maintenance", headers={"Content-Type": "text/plain"}))

    response = requests.get(f"{proxy.url}/fhir/metadata", timeout=2)

    assert (response.status_code, response.text) == (503, "down for maintenance")
    assert response.headers["Content-Type"] == "text/plain"


@pytest.mark.parametrize(
    "retry_after",
    ["2", "Wed, 21 Oct 2015 07:28:00 GMT"],
    ids=["delta-seconds", "http-date"],
)
def test_too_many_answers_429_with_retry_after(proxy: FaultProxy, upstream: Upstream, retry_after: str) -> None:
    proxy.set_faults(TooMany(retry_after))

    response = requests.post(f"{proxy.url}/fhir", json={}, timeout=2)

    assert response.status_code == 429
    assert response.headers["Retry-After"] == retry_after
    assert response.json()["issue"][0]["code"] == "throttled"
    assert upstream.count == 0


def test_a_slow_answer_makes_the_read_timeout_fire(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_faults(Slow(2))
    started = time.monotonic()

    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{proxy.url}/fhir/metadata", timeout=0.5)

    assert time.monotonic() - started < 1.5
    assert upstream.count == 1  # forwarded at once; only the answer is held


def test_a_slow_answer_arrives_when_the_client_waits_long_enough(proxy: FaultProxy) -> None:
    proxy.set_faults(Slow(0.3))
    started = time.monotonic()

    response = requests.get(f"{proxy.url}/fhir/metadata", timeout=2)

    assert response.status_code == 200
    assert time.monotonic() - started >= 0.3


def test_a_cut_response_reaches_the_upstream_and_breaks_the_clients_read(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_faults(CutMidResponse())

    with pytest.raises(requests.exceptions.ChunkedEncodingError) as raised:
        requests.post(f"{proxy.url}/fhir", json={"resourceType": "Bundle"}, timeout=2)

    # requests turns urllib3's ProtocolError(IncompleteRead) into ChunkedEncodingError, which is
    # not a ConnectionError: a client must catch both to treat a cut answer as "unknown outcome".
    assert not isinstance(raised.value, requests.exceptions.ConnectionError)
    assert "IncompleteRead" in str(raised.value)
    assert upstream.count == 1


def test_a_cut_response_sends_the_full_content_length_and_half_the_body(proxy: FaultProxy) -> None:
    proxy.set_faults(CutMidResponse())

    with socket.create_connection(("127.0.0.1", proxy.port), timeout=2) as connection:
        connection.sendall(b"GET /fhir/metadata HTTP/1.1\r\nHost: x\r\n\r\n")
        received = b"".join(iter(lambda: connection.recv(4096), b""))

    head, _, body = received.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    length = next(int(line.split(":")[1]) for line in lines if line.lower().startswith("content-length:"))
    assert lines[0] == "HTTP/1.1 200 OK"
    assert len(body) == length // 2 > 0


def test_after_upstream_500_commits_upstream_and_answers_500(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_faults(AfterUpstream(Status(500)))

    response = requests.post(f"{proxy.url}/fhir", json={"resourceType": "Bundle"}, timeout=2)

    assert response.status_code == 500
    assert upstream.count == 1
    assert proxy.faults_applied == ["AfterUpstream(Status(500))"]


def test_after_upstream_down_commits_upstream_and_gives_a_connection_error(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.set_faults(AfterUpstream(Down()))

    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(f"{proxy.url}/fhir", json={}, timeout=2)

    assert upstream.count == 1


def test_a_rewrite_commits_upstream_and_answers_its_status_with_the_edited_body(
    proxy: FaultProxy, upstream: Upstream
) -> None:
    proxy.set_faults(Rewrite(lambda body: {**body, "method": "EDITED"}, "method"))

    response = requests.post(f"{proxy.url}/fhir", json={"a": 1}, timeout=2)

    assert response.status_code == 201 and response.headers["Location"] == "http://upstream.example/fhir/Bundle/1"
    assert response.json() == {"method": "EDITED", "path": "/fhir", "body": '{"a": 1}'}
    assert upstream.count == 1
    assert proxy.faults_applied == ["Rewrite(method)"]


def test_down_closes_the_connection_without_an_answer(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_faults(Down())

    with pytest.raises(requests.exceptions.ConnectionError, match="without response"):
        requests.post(f"{proxy.url}/fhir", json={}, timeout=2)

    assert upstream.count == 0
    assert proxy.requests_seen == 1


def test_pause_refuses_connections_and_resume_listens_on_the_same_port(proxy: FaultProxy, upstream: Upstream) -> None:
    port = proxy.port
    proxy.pause()

    with pytest.raises(requests.exceptions.ConnectionError, match="refused"):
        requests.get(f"{proxy.url}/fhir/metadata", timeout=2)

    proxy.resume()
    assert proxy.port == port
    assert requests.get(f"{proxy.url}/fhir/metadata", timeout=2).status_code == 200
    assert upstream.count == 1


def test_pause_drops_open_keep_alive_connections(proxy: FaultProxy) -> None:
    with requests.Session() as session:
        assert session.get(f"{proxy.url}/fhir/metadata", timeout=2).status_code == 200
        proxy.pause()

        with pytest.raises(requests.exceptions.ConnectionError):
            session.get(f"{proxy.url}/fhir/metadata", timeout=2)


def test_a_fault_queue_is_consumed_in_order_then_requests_pass_through(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_faults(Status(503), TooMany("1"), AfterUpstream(Status(500)))

    statuses = [requests.get(f"{proxy.url}/fhir/metadata", timeout=2).status_code for _ in range(5)]

    assert statuses == [503, 429, 500, 200, 200]
    assert proxy.faults_applied == ["Status(503)", "TooMany(1)", "AfterUpstream(Status(500))"]
    assert proxy.requests_seen == 5
    assert upstream.count == 3


def test_a_standing_mode_applies_to_every_request_until_cleared(proxy: FaultProxy, upstream: Upstream) -> None:
    proxy.set_mode(Status(503))
    proxy.set_faults(TooMany())

    statuses = [requests.get(f"{proxy.url}/fhir/metadata", timeout=2).status_code for _ in range(3)]
    proxy.set_mode(None)
    statuses.append(requests.get(f"{proxy.url}/fhir/metadata", timeout=2).status_code)

    assert statuses == [429, 503, 503, 200]
    assert upstream.count == 1


def test_twenty_concurrent_requests_pass_through(proxy: FaultProxy, upstream: Upstream) -> None:
    def post(n: int) -> tuple[int, str]:
        response = requests.post(f"{proxy.url}/fhir?n={n}", data=f"body {n}", timeout=5)
        return response.status_code, response.json()["body"]

    with ThreadPoolExecutor(max_workers=20) as pool:
        results = list(pool.map(post, range(20)))

    assert results == [(201, f"body {n}") for n in range(20)]
    assert upstream.count == 20
    assert proxy.requests_seen == 20


def test_an_unreachable_upstream_answers_502() -> None:
    with FaultProxy("http://127.0.0.1:9") as proxy:
        response = requests.get(f"{proxy.url}/fhir/metadata", timeout=2)

    assert response.status_code == 502
    assert response.json()["resourceType"] == "OperationOutcome"


@pytest.mark.parametrize(
    ("form", "links"),
    [("base", ["Observation?code=1", "?_getpages=a&_getpagesoffset=2"]),
     ("path", ["/fhir/Observation?code=1", "/fhir?_getpages=a&_getpagesoffset=2"])],
)
def test_relative_links_rewrites_the_links_of_a_bundle_and_nothing_else(proxy: FaultProxy, upstream: Upstream,
                                                                        form: str, links: list[str]) -> None:
    proxy.set_mode(RelativeLinks(form))
    page = requests.get(f"{proxy.url}/fhir/Observation?code=1", timeout=2)
    other = requests.get(f"{proxy.url}/fhir/metadata", timeout=2)

    assert [link["url"] for link in page.json()["link"]] == links
    assert page.json()["type"] == "searchset"
    assert other.json() == {"method": "GET", "path": "/fhir/metadata", "body": ""}
    assert upstream.count == 2
    assert proxy.faults_applied == [f"RelativeLinks({form})"] * 2


def test_only_faults_can_be_set(proxy: FaultProxy) -> None:
    with pytest.raises(TypeError):
        proxy.set_faults(500)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "fault"),
    [
        ("down", Down()),
        ("status:500", Status(500)),
        ("toomany", TooMany("2")),
        ("toomany:5", TooMany("5")),
        ("slow:2.5", Slow(2.5)),
        ("cut", CutMidResponse()),
        ("after:status:500", AfterUpstream(Status(500))),
        ("relative", RelativeLinks("base")),
        ("relative:path", RelativeLinks("path")),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_fault_has_a_command_line_spelling(spec: str, fault: Fault) -> None:
    assert parse_fault(spec) == fault


@pytest.mark.parametrize("spec", ["", "status", "slow", "after", "explode", "relative:host"], ids=repr)
def test_an_unknown_fault_spelling_is_refused(spec: str) -> None:
    with pytest.raises(ValueError):
        parse_fault(spec)


def test_the_proxy_runs_as_its_own_process_and_prints_its_port(upstream: Upstream) -> None:
    command = [sys.executable, "-m", "tests.faultproxy", "--upstream", upstream.url, "--mode", "status:503"]
    with subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True) as process:
        try:
            ready, _, _ = select.select([process.stdout], [], [], 10)
            assert ready, "the proxy process printed no port within 10 s"
            port = int(process.stdout.readline())  # type: ignore[union-attr]
            response = requests.get(f"http://127.0.0.1:{port}/fhir/metadata", timeout=2)
        finally:
            process.terminate()
            returncode = process.wait(timeout=5)

    assert response.status_code == 503
    assert upstream.count == 0
    assert returncode == 0
