"""What the HTTP-edge probes share: a real ``fhir-migraine serve`` (gunicorn, two worker
processes) in front of a fault-injecting proxy to the test EHR, and raw-socket clients that
speak HTTP as badly or as slowly as a hostile client would."""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.faultproxy import FaultProxy
from tests.integration.test_kill import TOKEN, Service

__all__ = ["TOKEN", "Trickle", "exchange", "running_service", "worker_pids"]


@contextmanager
def running_service(tmp_path: Path, ehr_url: str, **env: str) -> Iterator[tuple[Service, FaultProxy]]:
    """The service (its settings overridden by ``env``, names without the FHIR_MIGRAINE_ prefix)
    pushing to the test EHR through a fault proxy."""
    with FaultProxy(ehr_url.rsplit("/fhir", 1)[0]) as proxy:
        service = Service(tmp_path, f"{proxy.url}/fhir")
        service.env.update({f"FHIR_MIGRAINE_{k}": v for k, v in env.items()})
        service.start()
        try:
            yield service, proxy
        finally:
            proxy.set_mode(None)
            service.stop()


def worker_pids(service: Service) -> list[int]:
    """The gunicorn worker processes of the service (the children of its master)."""
    assert service.process is not None
    pid = service.process.pid
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(c) for c in children]


def exchange(port: int, data: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``data`` on a new connection and read the answer until the service closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_all(sock)


def read_all(sock: socket.socket) -> bytes:
    answer = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        answer += chunk
    return answer


class Trickle(threading.Thread):
    """A slow client: sends ``head`` at once, then ``rest`` one byte every ``every`` seconds, and
    records when the service answered or closed the connection (``ended``) and what it said."""

    def __init__(self, port: int, head: bytes, rest: bytes, *, every: float = 1.0) -> None:
        super().__init__(daemon=True)
        self.port, self.head, self.rest, self.every = port, head, rest, every
        self.started_at = 0.0
        self.ended: float | None = None
        self.answer = b""
        self.stop = threading.Event()

    def run(self) -> None:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        self.started_at = time.monotonic()
        try:
            sock.sendall(self.head)
            rest = list(self.rest)
            while not self.stop.is_set():
                # Between two bytes, watch for the service answering or closing the connection.
                readable, _, _ = select.select([sock], [], [], self.every)
                if readable or not rest:
                    self.answer = read_all(sock)
                    self.ended = time.monotonic()
                    return
                sock.sendall(bytes([rest.pop(0)]))
        except OSError:
            self.ended = time.monotonic()  # cut off while sending
        finally:
            sock.close()

    def seconds(self) -> float:
        assert self.ended is not None, "the connection is still open"
        return self.ended - self.started_at
