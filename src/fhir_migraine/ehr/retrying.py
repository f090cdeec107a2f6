"""The EHR's single interactions for the writer, each asked again in place when the EHR answers
429 (Too Many Requests, RFC 6585) or 503 with a short ``Retry-After``, so that a part written one
request at a time goes on instead of failing whole for one throttled request."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from fhir_migraine.ehr.interface import Deliveries, Written
from fhir_migraine.errors import EhrUnavailable

Resource = dict[str, Any]


class Retrying:
    """The EHR's single interactions, each asked again in place when the EHR answers 429 or 503 with
    a short ``Retry-After`` (at most ``tries`` times, ``max_wait`` seconds each): a per-resource
    sequence goes on instead of failing the whole part for one throttled request. Anything else,
    or a longer wait, is the caller's (the outbox retries the part later)."""

    def __init__(self, ehr: Deliveries, sleep: Callable[[float], None], alive: Callable[[], None] | None = None, *,
                 tries: int = 3, max_wait: float = 5.0) -> None:
        self.ehr, self.sleep, self.alive, self.tries, self.max_wait = ehr, sleep, alive, tries, max_wait

    def _again(self, call: Callable[[], Any]) -> Any:
        for attempt in range(self.tries + 1):
            if self.alive is not None:
                self.alive()
            try:
                return call()
            except EhrUnavailable as error:
                wait = error.retry_after
                if attempt == self.tries or error.status not in (429, 503) or wait is None or wait > self.max_wait:
                    raise
                self.sleep(max(wait, 0.0))
        raise AssertionError("unreachable")

    def create(self, resource: Resource, *, if_none_exist: str | None = None) -> Written:
        return self._again(lambda: self.ehr.create(resource, if_none_exist=if_none_exist))  # type: ignore[no-any-return]

    def update(self, resource: Resource, *, if_match: str | None = None) -> Written:
        return self._again(lambda: self.ehr.update(resource, if_match=if_match))  # type: ignore[no-any-return]

    def read(self, resource_type: str, resource_id: str) -> Written:
        return self._again(lambda: self.ehr.read(resource_type, resource_id))  # type: ignore[no-any-return]

    def transaction(self, bundle: Resource) -> Resource:
        return self._again(lambda: self.ehr.transaction(bundle))  # type: ignore[no-any-return]

    def search(self, resource_type: str, params: dict[str, str]) -> Iterator[Resource]:
        """Every page, read before any is given (a search is asked again from its start)."""
        return iter(self._again(lambda: list(self.ehr.search(resource_type, params))))
