"""The SMART app's launches and clinicians' sessions, server-side in the service's SQLite database
(so every gunicorn worker process sees them), never in a cookie: an app inside an EHR's iframe
cannot count on third-party cookies.

A launch is kept under its OAuth ``state`` from the redirect to the authorization endpoint until
the callback takes it (once: a ``state`` replayed finds nothing). A session is kept under an
opaque random id that the app's pages carry in their path; it holds the EHR's base URL, the
launched patient and the clinician's access token until the token or ``ttl`` expires, whichever
comes first. The database is owner-only (``store``); the token is never logged.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from fhir_migraine.store import open_store

_SCHEMA = """
CREATE TABLE IF NOT EXISTS smart_launches (
    state TEXT PRIMARY KEY,
    iss TEXT NOT NULL,
    verifier TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS smart_sessions (
    id TEXT PRIMARY KEY,
    iss TEXT NOT NULL,
    patient TEXT NOT NULL,
    token TEXT NOT NULL,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
"""
#: Seconds a clinician has to pass the EHR's authorization step.
LAUNCH_TTL = 600.0


@dataclass(frozen=True)
class Launch:
    """A launch waiting for its callback."""

    iss: str
    verifier: str = field(repr=False)


@dataclass(frozen=True)
class Session:
    """A clinician's session of the app: which EHR, which patient, and the token to read with."""

    iss: str
    patient: str
    token: str = field(repr=False)


class SmartSessions:
    """The ``smart_launches`` and ``smart_sessions`` tables; safe to share between threads and processes."""

    def __init__(self, database: str, *, ttl: float, clock: Callable[[], float] = time.time) -> None:
        self._store = open_store(database, _SCHEMA)
        self.ttl = ttl
        self.clock = clock

    def begin(self, state: str, launch: Launch) -> None:
        """Keep a launch under its ``state`` (and drop what has expired)."""
        now = self.clock()
        self._purge(now)
        self._store.write("INSERT INTO smart_launches (state, iss, verifier, expires_at) VALUES (?, ?, ?, ?)",
                          (state, launch.iss, launch.verifier, now + min(LAUNCH_TTL, self.ttl)))

    def take(self, state: str) -> Launch | None:
        """The launch kept under ``state``, removed (a state works once); None when unknown or expired."""
        with self._store.transaction() as db:
            rows = db.execute("DELETE FROM smart_launches WHERE state = ? RETURNING iss, verifier, expires_at",
                              (state,)).fetchall()
        row = rows[0] if rows else None
        if row is None or row[2] < self.clock():
            return None
        return Launch(row[0], row[1])

    def open(self, iss: str, patient: str, token: str, lifetime: float) -> str:
        """A new session's id; it lasts the token's ``lifetime`` or the ``ttl``, the shorter."""
        session_id = secrets.token_urlsafe(32)
        expires = self.clock() + min(lifetime, self.ttl)
        self._store.write("INSERT INTO smart_sessions (id, iss, patient, token, expires_at) VALUES (?, ?, ?, ?, ?)",
                          (session_id, iss, patient, token, expires))
        return session_id

    def get(self, session_id: str) -> Session | None:
        """The session, or None when there is none of that id or it expired."""
        row = self._store.one("SELECT iss, patient, token, expires_at FROM smart_sessions WHERE id = ?", (session_id,))
        if row is None or row[3] < self.clock():
            return None
        return Session(row[0], row[1], row[2])

    def _purge(self, now: float) -> None:
        self._store.write("DELETE FROM smart_launches WHERE expires_at < ?", (now,))
        self._store.write("DELETE FROM smart_sessions WHERE expires_at < ?", (now,))
