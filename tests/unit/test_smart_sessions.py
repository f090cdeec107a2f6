"""The SMART app's launches and sessions: a state works once and expires, a session lasts the
token's lifetime or the TTL, whichever is shorter, and its id is unguessable."""

from __future__ import annotations

from fhir_migraine.ehr.smart_sessions import LAUNCH_TTL, Launch, SmartSessions


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def sessions(database: str, ttl: float = 3600.0) -> tuple[SmartSessions, Clock]:
    clock = Clock()
    return SmartSessions(database, ttl=ttl, clock=clock), clock


def test_a_state_is_taken_once(database: str) -> None:
    store, _ = sessions(database)
    store.begin("s1", Launch("https://ehr.example.org/fhir", "v" * 64))
    assert store.take("s1") == Launch("https://ehr.example.org/fhir", "v" * 64)
    assert store.take("s1") is None
    assert store.take("never-issued") is None


def test_a_launch_expires(database: str) -> None:
    store, clock = sessions(database)
    store.begin("s1", Launch("https://ehr.example.org/fhir", "v" * 64))
    clock.now += LAUNCH_TTL + 1
    assert store.take("s1") is None


def test_a_session_lasts_the_shorter_of_the_token_and_the_ttl(database: str) -> None:
    store, clock = sessions(database, ttl=600)
    short = store.open("https://ehr.example.org/fhir", "123", "token-a", lifetime=60)
    long = store.open("https://ehr.example.org/fhir", "123", "token-b", lifetime=86400)
    assert store.get(short) is not None and store.get(short).token == "token-a"  # type: ignore[union-attr]
    clock.now += 61
    assert store.get(short) is None and store.get(long) is not None
    clock.now += 600
    assert store.get(long) is None


def test_session_ids_are_long_random_and_the_token_stays_out_of_reprs(database: str) -> None:
    store, _ = sessions(database)
    ids = {store.open("https://ehr.example.org/fhir", "123", "secret-token", lifetime=60) for _ in range(20)}
    assert len(ids) == 20 and all(len(i) >= 43 for i in ids)
    found = store.get(next(iter(ids)))
    assert found is not None and "secret-token" not in repr(found)
    assert "v" * 64 not in repr(Launch("https://ehr.example.org/fhir", "v" * 64))
