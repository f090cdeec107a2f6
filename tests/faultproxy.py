"""A fault-injecting HTTP/1.1 reverse proxy that sits between the service and the test EHR.

Requests pass through to the upstream unless a fault is queued (``set_faults``, one per request, in
order) or standing (``set_mode``). The queue goes first; then the mode; then plain pass-through.

What the client sees, with ``requests`` as the client:

- ``Down()``                   nothing is forwarded, the socket is closed: ``ConnectionError``
- ``pause()``                  the listening socket is closed: ``ConnectionError`` (refused)
- ``Status(500)``              nothing is forwarded, a 500 with an OperationOutcome comes back
- ``TooMany("2")``             nothing is forwarded, a 429 with ``Retry-After: 2``
- ``Slow(2)``                  forwarded at once, the answer held 2 s: ``ReadTimeout`` if shorter
- ``CutMidResponse()``         forwarded (the upstream commits), half the body then a close:
                               ``ChunkedEncodingError`` (wrapping urllib3's ``IncompleteRead``)
- ``AfterUpstream(Status(500))``  forwarded (the upstream commits), the client gets the 500
- ``AfterUpstream(Down())``    forwarded (the upstream commits), then closed: ``ConnectionError``
- ``Rewrite(edit)``            forwarded (the upstream commits), the upstream's answer comes back
                               with its body as ``edit`` returns it (a JSON body, as a dict)
- ``RelativeLinks("base")``    forwarded; each ``Bundle.link.url`` of the answer made relative:
                               ``?_getpages=…`` (``"base"``) or ``/fhir?_getpages=…`` (``"path"``)

Run alone: ``python -m tests.faultproxy --listen 127.0.0.1:0 --upstream http://127.0.0.1:8090
[--mode status:503]`` prints the port on the first line and serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import logging
import signal
import socket
import socketserver
import threading
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# RFC 9110 section 7.6.1; each proxy sets its own. Expect is answered here (the body is read
# before forwarding), and Content-Length is recomputed from the bytes actually sent.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
     "trailer", "trailers", "transfer-encoding", "upgrade", "expect", "host", "content-length"}
)
NO_BODY_STATUSES = frozenset({204, 304})
ISSUE_CODES = {408: "timeout", 429: "throttled", 503: "transient", 504: "timeout"}


class Fault:
    """Something the proxy does to one request instead of plainly passing it through."""

    def __str__(self) -> str:
        return type(self).__name__  # the label in ``faults_applied``; faults with arguments add them


@dataclass(frozen=True)
class Down(Fault):
    """Close the client's connection without forwarding and without answering."""


@dataclass(frozen=True)
class Status(Fault):
    """Answer with ``code`` without forwarding; the default body is an OperationOutcome."""

    code: int
    body: bytes | str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def answer(self) -> _Answer:
        body = self.body if self.body is not None else outcome(self.code)
        defaults = {"Content-Type": "application/fhir+json;charset=utf-8", "Date": formatdate(usegmt=True)}
        given = {name.lower() for name in self.headers}
        headers = [(k, v) for k, v in defaults.items() if k.lower() not in given] + list(self.headers.items())
        data = body.encode("utf-8") if isinstance(body, str) else body
        return _Answer(self.code, http.client.responses.get(self.code, ""), headers, data)

    def __str__(self) -> str:
        return f"Status({self.code})"


@dataclass(frozen=True)
class TooMany(Fault):
    """Answer 429 without forwarding; ``retry_after`` is delta-seconds or an HTTP-date, sent as is."""

    retry_after: str | int = "2"

    def answer(self) -> _Answer:
        return Status(429, headers={"Retry-After": str(self.retry_after)}).answer()

    def __str__(self) -> str:
        return f"TooMany({self.retry_after})"


@dataclass(frozen=True)
class Slow(Fault):
    """Forward at once, then hold the answer ``seconds`` before sending any byte of it."""

    seconds: float

    def __str__(self) -> str:
        return f"Slow({self.seconds:g})"


@dataclass(frozen=True)
class CutMidResponse(Fault):
    """Forward, then send the status line, the headers with the full Content-Length and half the
    body, and close. The upstream has done the work; the client cannot know it."""


@dataclass(frozen=True)
class AfterUpstream(Fault):
    """Forward (the upstream does the work), then answer as ``then`` would, e.g. ``Status(500)``."""

    then: Fault

    def __str__(self) -> str:
        return f"AfterUpstream({self.then})"


@dataclass(frozen=True)
class Rewrite(Fault):
    """Forward, then answer with the upstream's status and headers and its JSON body as ``edit``
    makes it (``edit`` gets the parsed body and returns the body to send); a body that is not JSON
    is relayed unchanged."""

    edit: Callable[[dict[str, object]], dict[str, object]]
    label: str = "edit"

    def apply(self, answer: _Answer) -> _Answer:
        encodings = [v.strip().lower() for k, v in answer.headers if k.lower() == "content-encoding"]
        try:
            plain = gzip.decompress(answer.body) if encodings == ["gzip"] else answer.body
            body = json.loads(plain) if not encodings or encodings == ["gzip"] else None
        except (OSError, EOFError, ValueError):
            return answer
        if not isinstance(body, dict):
            return answer
        data = json.dumps(self.edit(body)).encode("utf-8")
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ("content-encoding", "etag")]
        return _Answer(answer.status, answer.reason, headers, data, None)

    def __str__(self) -> str:
        return f"Rewrite({self.label})"


@dataclass(frozen=True)
class RelativeLinks(Fault):
    """Forward, then rewrite each ``link.url`` of a Bundle answer as some EHRs write them: relative
    to the FHIR base ``base_path`` (``"base"``: ``?_getpages=…``, ``Observation?code=1``) or as an
    absolute path (``"path"``: ``/fhir?_getpages=…``)."""

    form: str = "base"
    base_path: str = "/fhir"

    def __post_init__(self) -> None:
        if self.form not in ("base", "path"):
            raise ValueError(f"RelativeLinks form must be base or path, not {self.form!r}")

    def rewrite(self, answer: _Answer) -> _Answer:
        encoding = next((v.strip().lower() for k, v in answer.headers if k.lower() == "content-encoding"), "")
        try:
            body = json.loads(gzip.decompress(answer.body) if encoding == "gzip" else answer.body)
        except (ValueError, OSError, EOFError):
            return answer
        if not isinstance(body, dict) or not isinstance(body.get("link"), list):
            return answer
        for link in body["link"]:
            if isinstance(link, dict) and isinstance(link.get("url"), str):
                link["url"] = self._relative(link["url"])
        headers = [(k, v) for k, v in answer.headers if k.lower() != "content-encoding"]  # sent decoded
        return _Answer(answer.status, answer.reason, headers, json.dumps(body).encode("utf-8"), answer.length)

    def _relative(self, url: str) -> str:
        parts = urlsplit(url)
        query = f"?{parts.query}" if parts.query else ""
        base = self.base_path.rstrip("/")
        if self.form == "path" or not (parts.path == base or parts.path.startswith(base + "/")):
            return parts.path + query
        return parts.path[len(base) + 1:] + query

    def __str__(self) -> str:
        return f"RelativeLinks({self.form})"


def outcome(code: int) -> str:
    """An OperationOutcome JSON saying that this status was injected by the proxy."""
    issue = {
        "severity": "error",
        "code": ISSUE_CODES.get(code, "exception"),
        "diagnostics": f"HTTP {code} injected by the test fault proxy",
    }
    return json.dumps({"resourceType": "OperationOutcome", "issue": [issue]})


def parse_fault(spec: str) -> Fault:
    """A fault from its command-line spelling: ``down``, ``status:500``, ``toomany[:2]``,
    ``slow:2.5``, ``cut``, ``after:<fault>``, ``relative[:base|path]``."""
    name, _, arg = spec.strip().partition(":")
    name = name.lower()
    if name == "down" and not arg:
        return Down()
    if name == "cut" and not arg:
        return CutMidResponse()
    if name == "status" and arg:
        return Status(int(arg))
    if name == "toomany":
        return TooMany(arg or "2")
    if name == "slow" and arg:
        return Slow(float(arg))
    if name == "after" and arg:
        return AfterUpstream(parse_fault(arg))
    if name == "relative":
        return RelativeLinks(arg or "base")
    raise ValueError(f"unknown fault {spec!r}")


@dataclass
class _Answer:
    """A response to relay: from the upstream or made up by a fault."""

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes
    length: int | None = None  # Content-Length to claim when it is not len(body): answers to HEAD


class FaultProxy:
    """A reverse proxy to ``upstream`` on ``host:port`` (0: any free port), serving in threads."""

    def __init__(
        self, upstream: str, *, host: str = "127.0.0.1", port: int = 0, upstream_timeout: float = 60.0
    ) -> None:
        parts = urlsplit(upstream)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
        self.upstream = upstream
        self.upstream_timeout = upstream_timeout
        self.host = host
        self.port = port
        self._upstream = parts
        self._lock = threading.Lock()
        self._queue: deque[Fault] = deque()
        self._queue_methods: frozenset[str] | None = None
        self._mode: Fault | None = None
        self._seen = 0
        self._applied: list[str] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._started = False

    @property
    def url(self) -> str:
        """The proxy's base URL, e.g. ``http://127.0.0.1:41234``; known once started."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def requests_seen(self) -> int:
        """How many requests reached the proxy, faulted or not."""
        with self._lock:
            return self._seen

    @property
    def faults_applied(self) -> list[str]:
        """The faults applied so far, in order, e.g. ``["Status(500)", "CutMidResponse"]``."""
        with self._lock:
            return list(self._applied)

    def set_faults(self, *faults: Fault, methods: Iterable[str] | None = None) -> None:
        """Replace the queue: each request takes the next fault; when it is empty, the mode applies.
        With ``methods``, only requests of those methods take from the queue (a readiness probe's
        GETs then leave the faults meant for the deliveries' POSTs)."""
        _check(faults)
        with self._lock:
            self._queue = deque(faults)
            self._queue_methods = frozenset(m.upper() for m in methods) if methods is not None else None

    def set_mode(self, mode: Fault | None) -> None:
        """A standing fault for every request the queue does not cover; None passes through."""
        _check([mode] if mode is not None else [])
        with self._lock:
            self._mode = mode

    def start(self) -> FaultProxy:
        """Listen and serve in a background thread; the port is fixed from here on."""
        if not self._started:
            self._listen()
            self._started = True
        return self

    def stop(self) -> None:
        """Stop listening and close every client connection, waking any held answer."""
        self.pause()
        self._started = False

    def pause(self) -> None:
        """Close the listening socket and all open connections: new connections are refused."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.closing.set()
        server.shutdown()
        server.server_close()
        server.drop_connections()
        if thread is not None:
            thread.join(5)

    def resume(self) -> None:
        """Listen again on the same port after ``pause``."""
        if self._started and self._server is None:
            self._listen()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def _listen(self) -> None:
        server = _Server((self.host, self.port), self)
        self.port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"faultproxy:{self.port}", daemon=True
        )
        self._thread.start()

    def _take_fault(self, method: str) -> Fault | None:
        with self._lock:
            self._seen += 1
            queued = self._queue and (self._queue_methods is None or method in self._queue_methods)
            fault = self._queue.popleft() if queued else self._mode
            if fault is not None:
                self._applied.append(str(fault))
            return fault


def _check(faults: Iterable[object]) -> None:
    for fault in faults:
        if not isinstance(fault, Fault):
            raise TypeError(f"not a Fault: {fault!r}")


class _Server(ThreadingHTTPServer):
    """Keeps its open connections, so that closing the proxy really drops them."""

    daemon_threads = True
    block_on_close = False  # held answers and idle keep-alive connections must not block stop()
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], proxy: FaultProxy) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        self.proxy = proxy
        self.closing = threading.Event()
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind looks up the host's FQDN, which can stall on a slow resolver.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = str(self.server_address[0]), int(self.server_address[1])

    def track(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.add(connection)
            if self.closing.is_set():
                _shut(connection)

    def untrack(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._connections.discard(connection)

    def drop_connections(self) -> None:
        # shutdown, not close: the handler thread still owns the descriptor and closes it itself.
        with self._connections_lock:
            for connection in self._connections:
                _shut(connection)


def _shut(connection: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the peer
        connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy"
    timeout = 30  # an idle keep-alive connection lets its thread go after this
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.untrack(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    def _handle(self) -> None:
        try:
            body = self._read_body()
        except ValueError:
            self.close_connection = True
            self._send(Status(400, body=outcome(400)).answer())
            return
        fault = self.server.proxy._take_fault(self.command)
        try:
            self._respond(fault, body)
        except OSError as exc:  # the client went away, or pause() dropped the connection
            log.debug("connection lost while answering: %s", exc)
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def _respond(self, fault: Fault | None, body: bytes, forwarded: _Answer | None = None) -> None:
        if isinstance(fault, AfterUpstream):
            self._respond(fault.then, body, forwarded or self._forward(body))
        elif isinstance(fault, Rewrite):
            self._send(fault.apply(forwarded or self._forward(body)))
        elif isinstance(fault, Down):
            self.close_connection = True  # nothing written: the client reads end-of-stream
        elif isinstance(fault, (Status, TooMany)):
            self._send(fault.answer())
        elif isinstance(fault, RelativeLinks):
            self._send(fault.rewrite(forwarded or self._forward(body)))
        elif isinstance(fault, Slow):
            answer = forwarded or self._forward(body)
            if self.server.closing.wait(fault.seconds):
                self.close_connection = True
            else:
                self._send(answer)
        else:
            self._send(forwarded or self._forward(body), cut=isinstance(fault, CutMidResponse))

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _read_chunked(self.rfile)
        length = int(self.headers.get("Content-Length") or 0)
        if length < 0:
            raise ValueError("negative Content-Length")
        data = self.rfile.read(length)
        if len(data) != length:
            raise ValueError("request body shorter than its Content-Length")
        return data

    def _forward(self, body: bytes) -> _Answer:
        """Send the request upstream and read its whole answer (plain or chunked)."""
        up = self.server.proxy._upstream
        connection_class = http.client.HTTPSConnection if up.scheme == "https" else http.client.HTTPConnection
        connection = connection_class(up.netloc, timeout=self.server.proxy.upstream_timeout)
        named = {v.strip().lower() for v in self.headers.get("Connection", "").split(",")}
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP | named]
        path = up.path.rstrip("/") + self.path
        has_body = bool(body) or "Content-Length" in self.headers or "Transfer-Encoding" in self.headers
        try:
            connection.putrequest(self.command, path, skip_accept_encoding=True)  # adds the upstream's Host
            for name, value in headers:
                connection.putheader(name, value)
            if has_body:
                connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body if has_body else None)
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            log.debug("upstream %s failed: %s", self.server.proxy.upstream, exc)
            return Status(502, body=outcome(502)).answer()
        finally:
            connection.close()
        named = {v.strip().lower() for v in (response.getheader("Connection") or "").split(",")}
        relayed = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP | named]
        length = response.getheader("Content-Length") if self.command == "HEAD" else None
        return _Answer(response.status, response.reason, relayed, data, int(length) if length else None)

    def _send(self, answer: _Answer, *, cut: bool = False) -> None:
        body = b"" if self.command == "HEAD" or answer.status in NO_BODY_STATUSES else answer.body
        if cut and not body:
            # Nothing to cut short: break the status line instead, which the client cannot parse.
            self.wfile.write(b"HTTP/1")
            self.close_connection = True
            return
        self.log_request(answer.status)
        self.send_response_only(answer.status, answer.reason)
        for name, value in answer.headers:
            self.send_header(name, value)
        if answer.status not in NO_BODY_STATUSES and answer.status >= 200:
            self.send_header("Content-Length", str(answer.length if answer.length is not None else len(body)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if cut else body)
        if cut:
            self.close_connection = True


def _read_chunked(rfile: object) -> bytes:
    """A chunked request body (RFC 9112 section 7.1), trailers discarded."""
    readline, read = rfile.readline, rfile.read  # type: ignore[attr-defined]
    parts = []
    while True:
        size = int(readline(65537).split(b";", 1)[0].strip() or b"x", 16)
        if size == 0:
            while readline(65537) not in (b"\r\n", b"\n", b""):
                pass
            return b"".join(parts)
        chunk = read(size)
        if len(chunk) != size:
            raise ValueError("request chunk cut short")
        parts.append(chunk)
        readline(65537)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the proxy as its own process until SIGINT or SIGTERM; print its port first."""
    parser = argparse.ArgumentParser(prog="python -m tests.faultproxy", description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="127.0.0.1:0", help="host:port to listen on; port 0 picks a free one")
    parser.add_argument("--upstream", required=True, help="base URL of the EHR, e.g. http://127.0.0.1:8090")
    parser.add_argument(
        "--mode", type=parse_fault,
        help="a standing fault: down, status:500, toomany:2, slow:2, cut, after:status:500, relative:base"
    )
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    signals = {signal.SIGINT, signal.SIGTERM}
    # Blocked before any thread starts, so every thread inherits the mask and sigwait gets them.
    signal.pthread_sigmask(signal.SIG_BLOCK, signals)
    try:
        with FaultProxy(args.upstream, host=host.strip("[]") or "127.0.0.1", port=int(port)) as proxy:
            proxy.set_mode(args.mode)
            print(proxy.port, flush=True)
            signal.sigwait(signals)
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, signals)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
