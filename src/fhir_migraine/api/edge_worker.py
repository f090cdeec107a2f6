"""gunicorn's threaded worker made safe against slow and hostile clients.

gunicorn's ``gthread`` worker hands a connection to a pool thread as soon as its first byte
arrives; the thread then blocks until the headers are complete, so a few clients trickling their
headers hold every thread, and gunicorn has no header time-out. ``EdgeWorker`` changes three things:

- the headers are read in the worker's event loop, without blocking, and the connection goes to
  a pool thread only once they are complete: a slow client holds a socket, never a thread;
- the headers must be complete within ``http.read_timeout`` of the connection, and the body within
  ``http.read_timeout`` of the headers (plus a second per MiB its ``Content-Length`` announces), in
  total however slowly a client trickles (then a 408);
- gunicorn's own errors (a bad request line, an invalid or oversized header, a read time-out)
  are answered as ``application/problem+json`` with constant details, never echoing the request,
  and logged with constant messages; no answer carries a ``Server`` banner naming gunicorn.

A finished connection is half-closed and drained for a short while before it is closed
("lingering close"): a client still sending a body that was refused (413, 401) then reads the
answer instead of a connection reset. The service serves plain HTTP (TLS ends at the hospital's
proxy), so the bytes read in the event loop are the request itself.
"""

from __future__ import annotations

import contextlib
import errno
import http
import json
import logging
import re
import selectors
import socket
import time
from collections import deque
from functools import partial
from typing import Any

from gunicorn.http import errors as http_errors
from gunicorn.http import wsgi
from gunicorn.http.unreader import SocketUnreader
from gunicorn.workers.gthread import TConn, ThreadWorker

from fhir_migraine.api.errors import PROBLEM_JSON, problem_document
from fhir_migraine.api.headers import SECURITY_HEADERS
from fhir_migraine.errors import RequestTimeout

log = logging.getLogger("fhir_migraine.api.server")

#: What the ``Server`` header says instead of gunicorn's name and version.
SERVER_NAME = "fhir-migraine"
#: Bytes of headers read in the event loop; a longer head goes to gunicorn's parser, whose limits
#: (request line, field size, field count) answer 4xx.
HEAD_LIMIT = 64 * 1024
#: Longest a finished connection is drained of what the client still sends.
LINGER_S = 2.0
RECV_CHUNK = 64 * 1024
#: A body announced by ``Content-Length`` gets one more second per this many bytes beyond the read
#: time-out, so a large upload on a sound link arrives in time while a trickle is still cut off.
MIN_BODY_RATE = 1024 * 1024
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d{1,15})[ \t]*\r\n", re.IGNORECASE)


def body_allowance(head: bytes, read_timeout: float) -> float:
    """Seconds the body of a request with this header block may take: the read time-out, plus one
    second per ``MIN_BODY_RATE`` bytes its ``Content-Length`` announces."""
    found = _CONTENT_LENGTH.search(head.partition(b"\r\n\r\n")[0] + b"\r\n")
    return read_timeout + (int(found.group(1)) / MIN_BODY_RATE if found else 0.0)


# gunicorn's parse errors: the status and a constant detail (gunicorn's own text quotes the request).
_REFUSALS: tuple[tuple[type[BaseException], int, str], ...] = (
    (http_errors.InvalidRequestLine, 400, "The request line is not valid HTTP."),
    (http_errors.InvalidRequestMethod, 400, "The request method is not valid."),
    (http_errors.InvalidHTTPVersion, 400, "The HTTP version is not supported."),
    (http_errors.LimitRequestLine, 414, "The request line is longer than this service takes."),
    (http_errors.LimitRequestHeaders, 431, "The request headers are larger than this service takes."),
    (http_errors.InvalidHeaderName, 400, "A request header name is not valid."),
    (http_errors.InvalidHeader, 400, "A request header is not valid."),
    (http_errors.ObsoleteFolding, 400, "A request header is folded over lines, which HTTP/1.1 forbids."),
    (http_errors.InvalidSchemeHeaders, 400, "The request's scheme headers contradict each other."),
    (http_errors.UnsupportedTransferCoding, 501, "The request's transfer coding is not supported."),
    (http_errors.InvalidProxyLine, 400, "The PROXY protocol line is not valid."),
    (http_errors.ForbiddenProxyRequest, 403, "PROXY protocol requests are not accepted from this address."),
    (RequestTimeout, 408, "The request was not sent within the read time-out."),
)


def refusal(exc: BaseException) -> tuple[int, str]:
    """The status and the constant detail of the answer to an error gunicorn met outside the app."""
    for kind, status, detail in _REFUSALS:
        if isinstance(exc, kind):
            return status, detail
    return 500, "An unexpected error occurred; it has been logged."


def error_response(status: int, detail: str) -> bytes:
    """A whole HTTP/1.1 answer: problem+json, the security headers, and the connection closed."""
    title = http.HTTPStatus(status).phrase
    body = json.dumps(problem_document(status, title, detail)).encode("utf-8")
    lines = [f"HTTP/1.1 {status} {title}", f"Server: {SERVER_NAME}", f"Content-Type: {PROBLEM_JSON}",
             f"Content-Length: {len(body)}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in SECURITY_HEADERS]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class DeadlineReader(SocketUnreader):  # type: ignore[misc]
    """gunicorn's socket reader with one deadline for all the reads of a request (what is left of
    the headers, and the body): past it, ``RequestTimeout``, however slowly the bytes came."""

    def __init__(self, sock: socket.socket, *, deadline: float, idle_timeout: float) -> None:
        super().__init__(sock)
        self.deadline = deadline
        self.idle_timeout = idle_timeout

    def chunk(self) -> bytes:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise RequestTimeout("The client did not send its request within the read time-out.")
        self.sock.settimeout(left)
        try:
            data: bytes = self.sock.recv(self.mxchunk)
        except TimeoutError:
            raise RequestTimeout("The client did not send its request within the read time-out.") from None
        finally:
            self.sock.settimeout(self.idle_timeout)  # bounds the writes of the answer too
        return data


class EdgeConn(TConn):  # type: ignore[misc]
    """A connection and the head of its request, read so far in the event loop."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any, *, deadline: float) -> None:
        super().__init__(cfg, sock, client, server)
        self.head = bytearray()
        self.deadline = deadline  # the headers must be complete by then; later, the end of lingering
        self.phase = "head"  # head -> request (a pool thread has it) -> linger -> closed


class EdgeWorker(ThreadWorker):  # type: ignore[misc]
    """See the module's docstring."""

    def init_process(self) -> None:
        # gunicorn writes its name and version in the Server header of every answer; the name
        # is read from this module constant when each answer is made (this process only).
        wsgi.SERVER = SERVER_NAME
        self.read_timeout: float = self.app.settings.http.read_timeout
        self._heads: deque[EdgeConn] = deque()  # in the order of their deadlines
        self._lingering: deque[EdgeConn] = deque()
        super().init_process()

    # --- the event loop (main thread) ------------------------------------------------------------

    def accept(self, server: Any, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        conn = EdgeConn(self.cfg, sock, client, server, deadline=time.monotonic() + self.read_timeout)
        self.nr_conns += 1
        with self._lock:
            self._heads.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_client_socket_readable, conn))

    def on_client_socket_readable(self, conn: EdgeConn, client: socket.socket) -> None:
        """Read what arrived of the head without blocking; hand the connection to a pool thread
        once the headers are complete (or longer than the event loop reads)."""
        try:
            data = conn.sock.recv(RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client left before its request was complete
            self._close(conn)
            return
        conn.head += data
        if b"\r\n\r\n" not in conn.head and len(conn.head) < HEAD_LIMIT:
            return
        with self._lock:
            self.poller.unregister(conn.sock)
        conn.phase = "request"
        self.enqueue_req(conn)

    def enqueue_req(self, conn: EdgeConn) -> None:
        conn.init()
        conn.sock.settimeout(self.read_timeout)
        allowance = body_allowance(bytes(conn.head), self.read_timeout)
        reader = DeadlineReader(conn.sock, deadline=time.monotonic() + allowance, idle_timeout=self.read_timeout)
        reader.unread(bytes(conn.head))  # the head read in the event loop comes first
        conn.head = bytearray()
        conn.parser.unreader = reader
        future = self.tpool.submit(self.handle, conn)
        self._wrap_future(future, conn)

    def murder_keepalived(self) -> None:
        """Each turn of the loop: answer 408 to clients whose headers are late, end lingering."""
        super().murder_keepalived()
        now = time.monotonic()
        late: list[EdgeConn] = []
        with self._lock:
            while self._heads and (self._heads[0].phase != "head" or self._heads[0].deadline <= now):
                conn = self._heads.popleft()
                if conn.phase == "head":
                    late.append(conn)
            while self._lingering and (self._lingering[0].phase != "linger" or self._lingering[0].deadline <= now):
                conn = self._lingering.popleft()
                if conn.phase == "linger":
                    self._close(conn)
        for conn in late:
            log.warning("request headers not received within the read time-out", extra={"status": 408})
            with contextlib.suppress(OSError):  # a full buffer or a gone client: the close says enough
                conn.sock.send(error_response(408, "The request headers were not sent within the read time-out."))
            self._close(conn)

    def _drain(self, conn: EdgeConn, client: socket.socket) -> None:
        try:
            data = conn.sock.recv(RECV_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._close(conn)

    def _close(self, conn: EdgeConn) -> None:
        if conn.phase == "closed":
            return
        with self._lock:
            if conn.phase in ("head", "linger"):
                with contextlib.suppress(KeyError, ValueError, OSError):
                    self.poller.unregister(conn.sock)
            conn.phase = "closed"
            self.nr_conns -= 1
        conn.close()

    # --- the pool threads --------------------------------------------------------------------------

    def finish_request(self, fs: Any) -> None:
        """The request is answered (connections are not kept alive): half-close the connection and
        let the event loop drain what the client still sends, then close it."""
        conn: EdgeConn = fs.conn
        try:
            conn.sock.shutdown(socket.SHUT_WR)
            conn.sock.setblocking(False)
        except OSError:
            conn.phase = "request-done"
            with self._lock:
                self.nr_conns -= 1
            conn.close()
            return
        with self._lock:
            conn.phase = "linger"
            conn.deadline = time.monotonic() + LINGER_S
            self._lingering.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self._drain, conn))

    def handle_error(self, req: Any, client: socket.socket, addr: Any, exc: BaseException) -> None:
        """gunicorn's answer to a request it could not parse or serve, as problem+json; logged
        without the request line, path or headers (gunicorn's own handler prints them)."""
        status, detail = refusal(exc)
        extra = {"status": status, "error_type": type(exc).__name__, "route": self._route(req)}
        if status >= 500:
            log.error("request failed outside the app", extra=extra)
        else:
            log.warning("request refused before the app", extra=extra)
        with contextlib.suppress(OSError):  # the client is gone
            client.sendall(error_response(status, detail))

    def _route(self, req: Any) -> str:
        """The route template the request's path matches (never the path: it can name a patient)."""
        path, method = getattr(req, "path", None), getattr(req, "method", None)
        if not path or not method or not hasattr(self.wsgi, "url_map"):
            return "(no route)"
        try:
            rule, _ = self.wsgi.url_map.bind("service").match(path, method=method, return_rule=True)
        except Exception:  # werkzeug's NotFound, MethodNotAllowed, RequestRedirect
            return "(no route)"
        return str(rule.rule)
