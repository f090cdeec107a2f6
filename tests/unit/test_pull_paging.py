"""Following a search's pages through the real FHIR client over a fake HTTP layer: next links in
every form resolved against the base URL, the credentials kept to the EHR's origin (or a trusted
gateway), busy or slow pages asked again where they failed, within bounds, and ``_count`` bounded."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest
import requests

from fhir_migraine.ehr.auth import BearerToken
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.paging import Pager, PagingPolicy, origin, resolve_link
from fhir_migraine.errors import ConfigError, EhrRejected, EhrTimeout, EhrUnavailable
from fhir_migraine.identifiers import DIARY_SYSTEM
from tests.fakehttp import BASE, FakeEhrSession, Fault, observations

TOKEN = "ehr-access-token"
PARAMS = {"subject": "Patient/1", "identifier": f"{DIARY_SYSTEM}|", "_count": "2"}


def client(session: FakeEhrSession, **options) -> FhirClient:
    return FhirClient(BASE, auth=BearerToken(TOKEN), session=session, **options)


def pager(session: FakeEhrSession, policy: PagingPolicy | None = None, sleeps: list[float] | None = None,
          **options) -> Pager:
    record = sleeps if sleeps is not None else []
    return Pager(client(session, **options), policy or PagingPolicy(), sleep=record.append)


def ids(pages) -> list[str]:
    return [e["resource"]["id"] for page in pages for e in page.bundle["entry"]]


@pytest.mark.parametrize(
    ("link", "expected"),
    [
        ("https://ehr.example/fhir?_getpages=a&_offset=2", "https://ehr.example/fhir?_getpages=a&_offset=2"),
        ("?_getpages=a&_offset=2", "https://ehr.example/fhir?_getpages=a&_offset=2"),
        ("Observation?page=2", "https://ehr.example/fhir/Observation?page=2"),
        ("/fhir/Observation?page=2", "https://ehr.example/fhir/Observation?page=2"),
        ("//other.example/fhir?page=2", "https://other.example/fhir?page=2"),
        ("  ?page=2#frag", "https://ehr.example/fhir?page=2"),
    ],
    ids=["absolute", "query-only", "relative-path", "absolute-path", "network-path", "blanks-and-fragment"],
)
def test_a_next_link_resolves_against_the_base_url(link: str, expected: str) -> None:
    assert resolve_link(BASE, link) == expected
    assert resolve_link(BASE + "/", link) == expected


def test_an_origin_is_scheme_host_and_port_with_the_default_port_explicit() -> None:
    assert origin("HTTPS://EHR.Example/fhir?x=1") == origin("https://ehr.example:443/other") == "https://ehr.example:443"
    assert origin("http://[::1]:8090/fhir") == "http://[::1]:8090"
    for bad in ("ftp://ehr.example/fhir", "/fhir", "https://ehr.example:port/"):
        with pytest.raises(ValueError):
            origin(bad)


@pytest.mark.parametrize("form", ["absolute", "query", "relative-path", "absolute-path"])
def test_every_page_is_followed_whatever_the_form_of_the_next_link(form: str) -> None:
    session = FakeEhrSession(observations(5, DIARY_SYSTEM), link_form=form)
    pages = list(pager(session).pages("Observation", PARAMS))
    assert ids(pages) == ["1", "2", "3", "4", "5"]
    assert len(session.sent) == 3
    assert [s.url.split("?")[0] for s in session.sent] == [f"{BASE}/Observation"] + (
        [f"{BASE}/Observation"] * 2 if form == "relative-path" else [BASE] * 2)
    assert all(s.headers["Authorization"] == f"Bearer {TOKEN}" for s in session.sent)


@pytest.mark.parametrize(
    ("link", "named"),
    [("https://elsewhere.example/fhir?_page=x&_offset=2", "https://elsewhere.example:443"),
     ("//elsewhere.example/fhir?_page=x&_offset=2", "https://elsewhere.example:443"),
     ("http://ehr.example/fhir?_page=x&_offset=2", "http://ehr.example:80"),
     ("https://ehr.example:8443/fhir?_page=x&_offset=2", "https://ehr.example:8443"),
     ("ftp://ehr.example/fhir?_page=x&_offset=2", "not an http(s) URL")],
    ids=["other-host", "network-path", "plain-http", "other-port", "not-http"],
)
def test_a_next_link_to_another_origin_is_refused_and_nothing_is_sent_there(link: str, named: str) -> None:
    session = FakeEhrSession(observations(5, DIARY_SYSTEM), next_link=lambda kind, paging: link)
    pages = pager(session).pages("Observation", PARAMS)
    assert ids([next(pages)]) == ["1", "2"]
    with pytest.raises(EhrRejected) as refused:
        next(pages)
    assert len(session.sent) == 1, "the foreign link was never requested, so no token went there"
    assert named in refused.value.message and not refused.value.retryable
    assert "_page" not in refused.value.message, "the link's query (patient data) stays out of the message"


def test_a_next_link_to_the_configured_gateway_origin_is_followed_with_the_token() -> None:
    gateway = "https://fhir-gateway.example"
    session = FakeEhrSession(observations(3, DIARY_SYSTEM), next_link=lambda kind, paging: f"{gateway}/r4?{paging}")
    pages = list(pager(session, trusted_origins=[gateway]).pages("Observation", PARAMS))
    assert ids(pages) == ["1", "2", "3"]
    assert session.sent[1].url.startswith(f"{gateway}/r4?")
    assert session.sent[1].headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_trusted_origin_that_is_not_a_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError):
        client(FakeEhrSession(), trusted_origins=["fhir-gateway.example"])


def test_a_429_with_retry_after_is_waited_out_and_the_same_page_asked_again() -> None:
    session = FakeEhrSession(observations(5, DIARY_SYSTEM), faults={2: Fault(429, {"Retry-After": "3"})})
    sleeps: list[float] = []
    pages = list(pager(session, sleeps=sleeps).pages("Observation", PARAMS))
    assert ids(pages) == ["1", "2", "3", "4", "5"], "nothing lost, nothing twice"
    assert sleeps == [3.0]
    assert len(session.sent) == 4
    assert session.sent[1].url == session.sent[2].url, "resumed at the page that failed, not from the start"
    assert "_offset=2" in session.sent[2].url


def test_a_retry_after_given_as_an_http_date_is_honoured() -> None:
    when = formatdate(timeval=time.time() + 20, usegmt=True)
    session = FakeEhrSession(observations(3, DIARY_SYSTEM), faults={1: Fault(503, {"Retry-After": when})})
    sleeps: list[float] = []
    assert ids(pager(session, sleeps=sleeps).pages("Observation", PARAMS)) == ["1", "2", "3"]
    assert len(sleeps) == 1 and 17 <= sleeps[0] <= 20


def test_without_retry_after_the_waits_double_from_the_backoff() -> None:
    faults = {1: Fault(503), 2: Fault(504), 3: Fault(408)}
    session = FakeEhrSession(observations(1, DIARY_SYSTEM), faults=faults)
    sleeps: list[float] = []
    assert ids(pager(session, PagingPolicy(backoff=0.5), sleeps).pages("Observation", PARAMS)) == ["1"]
    assert sleeps == [0.5, 1.0, 2.0]


def test_a_time_out_is_retried_at_the_same_page() -> None:
    faults = {3: Fault(error=requests.exceptions.ReadTimeout("slow")),
              4: Fault(error=requests.exceptions.ConnectTimeout("slow"))}
    session = FakeEhrSession(observations(5, DIARY_SYSTEM), faults=faults)
    sleeps: list[float] = []
    assert ids(pager(session, sleeps=sleeps).pages("Observation", PARAMS)) == ["1", "2", "3", "4", "5"]
    assert sleeps == [1.0, 2.0]
    assert session.sent[2].url == session.sent[3].url == session.sent[4].url


def test_retries_of_one_page_are_bounded() -> None:
    faults = {n: Fault(429, {"Retry-After": "0"}) for n in range(2, 20)}
    session = FakeEhrSession(observations(5, DIARY_SYSTEM), faults=faults)
    sleeps: list[float] = []
    pages = pager(session, PagingPolicy(max_retries=2), sleeps).pages("Observation", PARAMS)
    with pytest.raises(EhrUnavailable) as gave_up:
        list(pages)
    assert len(session.sent) == 4, "the first page, then page 2 asked three times"
    assert sleeps == [0.0, 0.0]
    assert gave_up.value.status == 429 and gave_up.value.retryable
    assert "FHIR_MIGRAINE_PULL_MAX_RETRIES" in gave_up.value.message


def test_a_retry_after_longer_than_the_wait_left_fails_at_once() -> None:
    session = FakeEhrSession(observations(5, DIARY_SYSTEM), faults={2: Fault(429, {"Retry-After": "120"})})
    sleeps: list[float] = []
    with pytest.raises(EhrUnavailable) as gave_up:
        list(pager(session, PagingPolicy(max_wait=60), sleeps).pages("Observation", PARAMS))
    assert sleeps == [] and len(session.sent) == 2
    assert gave_up.value.retry_after == 120.0
    assert "FHIR_MIGRAINE_PULL_MAX_WAIT" in gave_up.value.message


def test_the_wait_budget_is_shared_by_every_search_of_one_pager() -> None:
    faults = {1: Fault(429, {"Retry-After": "40"}), 3: Fault(429, {"Retry-After": "40"})}
    session = FakeEhrSession(observations(1, DIARY_SYSTEM), faults=faults)
    sleeps: list[float] = []
    shared = pager(session, PagingPolicy(max_wait=60), sleeps)
    assert ids(shared.pages("Observation", PARAMS)) == ["1"]
    with pytest.raises(EhrUnavailable, match="FHIR_MIGRAINE_PULL_MAX_WAIT"):
        list(shared.pages("Observation", PARAMS))
    assert sleeps == [40.0]


def test_a_time_out_counts_against_the_wait_budget() -> None:
    ticks = iter(range(0, 1000, 50))  # each failed attempt takes 50 s by this clock
    session = FakeEhrSession(observations(1, DIARY_SYSTEM),
                             faults={1: Fault(error=requests.exceptions.ReadTimeout("slow"))})
    sleeps: list[float] = []
    slow = Pager(client(session), PagingPolicy(max_wait=30), sleep=sleeps.append, clock=lambda: float(next(ticks)))
    with pytest.raises(EhrTimeout, match="FHIR_MIGRAINE_PULL_MAX_WAIT"):
        list(slow.pages("Observation", PARAMS))
    assert sleeps == []


@pytest.mark.parametrize("status", [400, 404, 500, 502])
def test_other_failures_are_not_retried(status: int) -> None:
    session = FakeEhrSession(observations(5, DIARY_SYSTEM), faults={2: Fault(status, {"Retry-After": "1"})})
    sleeps: list[float] = []
    with pytest.raises((EhrRejected, EhrUnavailable)) as failed:
        list(pager(session, sleeps=sleeps).pages("Observation", PARAMS))
    assert failed.value.status == status
    assert sleeps == [] and len(session.sent) == 2


def test_a_plain_search_never_waits() -> None:
    session = FakeEhrSession(observations(5, DIARY_SYSTEM), faults={2: Fault(429, {"Retry-After": "1"})})
    with pytest.raises(EhrUnavailable) as busy:
        list(client(session).search("Observation", PARAMS))
    assert busy.value.status == 429 and len(session.sent) == 2


def test_count_is_kept_within_the_maximum() -> None:
    session = FakeEhrSession(observations(5, DIARY_SYSTEM))
    list(pager(session, PagingPolicy(max_count=3)).pages("Observation", {**PARAMS, "_count": "500"}))
    assert "_count=3" in session.sent[0].url and len(session.sent) == 2
    small = FakeEhrSession(observations(5, DIARY_SYSTEM))
    list(client(small, max_count=3).search("Observation", {**PARAMS, "_count": "2"}))
    assert "_count=2" in small.sent[0].url, "a smaller _count is asked as it is"


def test_each_page_carries_the_answers_date_header() -> None:
    session = FakeEhrSession(observations(3, DIARY_SYSTEM), date="Mon, 30 Nov 2026 10:00:05 GMT")
    pages = list(pager(session).pages("Observation", PARAMS))
    assert [p.date for p in pages] == ["Mon, 30 Nov 2026 10:00:05 GMT"] * 2
