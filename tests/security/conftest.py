"""The security probes: those that need the real EHR use the integration tests' server fixtures
(the local HAPI FHIR test server, started once per run; never skipped when CI=true)."""

from tests.integration.conftest import ehr, ehr_url, run_id

__all__ = ["ehr", "ehr_url", "run_id"]
