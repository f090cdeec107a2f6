"""A pull from the real HAPI server through the fault proxy: next links made relative, a 429 with
Retry-After in the middle of a search (waited out, the search resumed at the page that failed), and
absolute links to an origin that is not the configured one (refused, unless it is the configured
gateway origin). Each time the diary month comes back whole and unmaps to its input."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from fhir_migraine import operations
from fhir_migraine.config import EhrSettings, Settings
from fhir_migraine.ehr.client import FhirClient
from fhir_migraine.ehr.gateway import EhrGateway
from fhir_migraine.errors import EhrRejected
from fhir_migraine.inputs.diary_files import Located
from tests.faultproxy import FaultProxy, RelativeLinks, TooMany
from tests.integration.helpers import example_diary, sort_entries

pytestmark = pytest.mark.ehr

PAGE = 7  # the month's 57 diary Observations come in 9 pages, its 8 MedicationStatements in 2, its 2 questionnaire responses in 1


@pytest.fixture
def proxy(ehr_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(ehr_url.rsplit("/fhir", 1)[0]) as running:
        yield running


@pytest.fixture
def month(ehr: FhirClient, run_id: str) -> tuple[str, list[dict]]:
    """The diary month of a patient of this test alone, written straight into the EHR."""
    patient = f"Patient/pull-{run_id}"
    diary = example_diary(run_id, patient)
    ehr.transaction(operations.map_diary([Located(e) for e in diary]))
    return patient, diary


def gateway(proxy: FaultProxy, tmp_path: Path, **ehr: object) -> EhrGateway:
    settings = Settings(database=str(tmp_path / "pull.sqlite3"),
                        ehr=EhrSettings(url=f"{proxy.url}/fhir", max_count=PAGE, **ehr))  # type: ignore[arg-type]
    return EhrGateway.from_settings(settings)


@pytest.mark.parametrize("form", ["base", "path"])
def test_a_pull_follows_relative_next_links(proxy: FaultProxy, tmp_path: Path, month, form: str) -> None:
    patient, diary = month
    proxy.set_mode(RelativeLinks(form))
    found = gateway(proxy, tmp_path).pull_unmapped(patient)
    assert found["resources"] == len(operations.map_diary([Located(e) for e in diary])["entry"]) == 67
    assert sort_entries(found["diary"]) == sort_entries(diary)
    assert found["invalid"] == [] and found["incomplete"] == []
    assert proxy.requests_seen == 1 + 3 + 9 + 2 + 1 + 1, \
        "the statement, three searches of one page, the diary search of nine, the medication statements' of two, " \
        "the questionnaire responses' of one, the reports' of one"


def test_a_pull_waits_out_a_429_and_resumes_at_the_page_that_failed(proxy: FaultProxy, tmp_path: Path,
                                                                     month) -> None:
    patient, diary = month
    proxy.set_mode(RelativeLinks("base"))
    # The statement read, three searches of one page, the diary search's first page, then its second
    # page is refused.
    proxy.set_faults(*[RelativeLinks("base")] * 5, TooMany("2"), methods=["GET"])
    started = time.monotonic()
    found = gateway(proxy, tmp_path).pull_unmapped(patient)
    assert time.monotonic() - started >= 2.0, "the page was asked again only after Retry-After"
    assert sort_entries(found["diary"]) == sort_entries(diary)
    assert "TooMany(2)" in proxy.faults_applied
    assert proxy.requests_seen == 1 + 3 + 9 + 2 + 1 + 1 + 1, "one page asked again, the search not started over"


def test_absolute_links_to_another_origin_are_refused_unless_it_is_the_gateway_origin(
        proxy: FaultProxy, tmp_path: Path, ehr_url: str, month) -> None:
    patient, diary = month
    # Through the proxy, HAPI writes its paging links with its own address, another origin.
    with pytest.raises(EhrRejected, match="FHIR_MIGRAINE_EHR_GATEWAY_ORIGIN"):
        gateway(proxy, tmp_path).pull(patient)
    parts = urlsplit(ehr_url)
    trusted = gateway(proxy, tmp_path, gateway_origin=f"{parts.scheme}://{parts.netloc}", allow_http=True)
    found = trusted.pull_unmapped(patient)
    assert sort_entries(found["diary"]) == sort_entries(diary)
