"""Feedback of the CDS services (CDS Hooks 2.0, https://cds-hooks.hl7.org/2.0/#feedback): which
cards a clinician accepted or overrode, kept in the SQLite database.

Only what says how a card fared is kept: the service, the card's uuid, the outcome, the uuids of
the accepted suggestions, the override reason's code and when it happened. The override's
``userComment`` is free text a clinician typed (it may name the patient): it is never stored.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

from fhir_migraine.errors import HookRefused, Problem
from fhir_migraine.store import open_store

OUTCOMES = ("accepted", "overridden")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cds_feedback (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    service TEXT NOT NULL,
    card TEXT NOT NULL,
    outcome TEXT NOT NULL,
    accepted_suggestions TEXT NOT NULL,
    override_reason TEXT,
    outcome_timestamp TEXT NOT NULL,
    client TEXT NOT NULL,
    received_at REAL NOT NULL
);
"""


@dataclass(frozen=True)
class Feedback:
    """One card's outcome, as stored."""

    card: str
    outcome: str
    accepted_suggestions: tuple[str, ...]
    override_reason: str | None  # "<system>|<code>" of the reason's Coding
    outcome_timestamp: str


def _text(value: Any, path: str, problems: list[Problem]) -> str:
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem(path, "must be a non-empty string"))
        return ""
    return value


def _one(item: Any, path: str, problems: list[Problem]) -> Feedback | None:
    if not isinstance(item, dict):
        problems.append(Problem(path, "must be an object"))
        return None
    card = _text(item.get("card"), f"{path}.card", problems)
    outcome = item.get("outcome")
    if outcome not in OUTCOMES:
        problems.append(Problem(f"{path}.outcome", f"must be one of {', '.join(OUTCOMES)}"))
    stamp = _text(item.get("outcomeTimestamp"), f"{path}.outcomeTimestamp", problems)
    accepted = item.get("acceptedSuggestions", [])
    ids: list[str] = []
    if not isinstance(accepted, list):
        problems.append(Problem(f"{path}.acceptedSuggestions", "must be an array"))
    else:
        for i, suggestion in enumerate(accepted):
            ids.append(_text(suggestion.get("id") if isinstance(suggestion, dict) else None,
                             f"{path}.acceptedSuggestions[{i}].id", problems))
    reason = item.get("overrideReason")
    code: str | None = None
    if reason is not None:
        coding = reason.get("reason") if isinstance(reason, dict) else None
        if not isinstance(coding, dict) or not isinstance(coding.get("code"), str):
            problems.append(Problem(f"{path}.overrideReason.reason", "must be a Coding with a code"))
        else:
            code = f"{coding.get('system') or ''}|{coding['code']}"
    return Feedback(card, str(outcome), tuple(ids), code, stamp)


def parse(body: Any) -> list[Feedback]:
    """The feedback items of a request body; HookRefused naming each field that is wrong."""
    if not isinstance(body, dict) or not isinstance(body.get("feedback"), list) or not body["feedback"]:
        raise HookRefused.of([Problem("$.feedback", "must be a non-empty array of feedback items")], "CDS feedback")
    problems: list[Problem] = []
    found = [_one(item, f"$.feedback[{i}]", problems) for i, item in enumerate(body["feedback"])]
    if problems:
        raise HookRefused.of(problems, "CDS feedback")
    return [f for f in found if f is not None]


class FeedbackStore:
    """The recorded outcomes of the cards."""

    def __init__(self, database: str) -> None:
        self._store = open_store(database, _SCHEMA)

    def record(self, service: str, items: list[Feedback], *, client: str) -> None:
        now = time.time()
        with self._store.transaction() as db:
            db.executemany(
                "INSERT INTO cds_feedback (service, card, outcome, accepted_suggestions, override_reason, "
                "outcome_timestamp, client, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(service, f.card, f.outcome, json.dumps(list(f.accepted_suggestions)), f.override_reason,
                  f.outcome_timestamp, client, now) for f in items],
            )

    def of_card(self, card: str) -> list[Feedback]:
        rows = self._store.all("SELECT card, outcome, accepted_suggestions, override_reason, outcome_timestamp "
                               "FROM cds_feedback WHERE card = ? ORDER BY seq", (card,))
        return [Feedback(r[0], r[1], tuple(json.loads(r[2])), r[3], r[4]) for r in rows]
