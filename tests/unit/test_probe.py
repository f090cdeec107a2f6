"""The EHR readiness probe: /ready answers from its last look, which a background thread refreshes."""

from __future__ import annotations

import threading
from typing import Any

from fhir_migraine.ehr.probe import EhrProbe
from fhir_migraine.errors import EhrUnavailable


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class ScriptedEhr:
    """Answers metadata, or raises the scripted errors first; counts the calls."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.called = threading.Event()

    def metadata(self) -> dict[str, Any]:
        self.calls += 1
        self.called.set()
        if self.errors:
            raise self.errors.pop(0)
        return {"resourceType": "CapabilityStatement"}


def test_before_the_first_probe_the_state_says_so_without_asking_the_ehr() -> None:
    ehr = ScriptedEhr()
    assert EhrProbe(ehr, interval=15).state() == {"configured": True, "reachable": None, "probe_age_s": None}
    assert ehr.calls == 0


def test_the_state_is_the_last_probe_and_its_age() -> None:
    clock, ehr = Clock(), ScriptedEhr(EhrUnavailable("down"))
    probe = EhrProbe(ehr, interval=15, clock=clock)
    assert probe.probe() == {"configured": True, "reachable": False, "error": "EhrUnavailable", "probe_age_s": 0.0}
    clock.now += 7.25
    assert probe.state()["probe_age_s"] == 7.2  # rounded to a tenth
    probe.probe()
    assert probe.state() == {"configured": True, "reachable": True, "probe_age_s": 0.0}
    assert ehr.calls == 2


def test_an_unexpected_error_is_reported_and_does_not_end_the_probe() -> None:
    probe = EhrProbe(ScriptedEhr(ValueError("bug")), interval=15)
    assert probe.probe()["error"] == "ValueError"
    assert probe.probe()["reachable"] is True


def test_the_thread_probes_at_once_and_stops() -> None:
    ehr = ScriptedEhr()
    probe = EhrProbe(ehr, interval=60).start()
    try:
        assert ehr.called.wait(5)
        assert probe.running
        probe.start()  # once, however often started
    finally:
        assert probe.stop(timeout=5)
    assert not probe.running and ehr.calls == 1
    assert probe.state()["reachable"] is True


def test_a_diary_needs_medication_statement_create_and_ready_says_so() -> None:
    from fhir_migraine.ehr.capabilities import read_capabilities
    from fhir_migraine.ehr.probe import capability_state

    def statement(*creatable: str) -> dict[str, Any]:
        kinds = ("Observation", "QuestionnaireResponse", "MedicationStatement", "MedicationRequest", "RequestGroup", "DetectedIssue")
        return {"resourceType": "CapabilityStatement", "rest": [{"mode": "server", "resource": [
            {"type": t, "interaction": [{"code": "read"}] + ([{"code": "create"}] if t in creatable else [])} for t in kinds]}]}

    without = capability_state(read_capabilities(statement("Observation", "QuestionnaireResponse")))
    assert without["cannot_write"]["diary"] == ["create MedicationStatement"]
    with_it = capability_state(read_capabilities(statement("Observation", "QuestionnaireResponse", "MedicationStatement")))
    assert "diary" not in with_it["cannot_write"], "orders still cannot be written; the diary can"
