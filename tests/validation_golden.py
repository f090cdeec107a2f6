"""The expected issues of the validation corpus and of a fixed set of damaged resources, kept in
``tests/data/validation/golden.json`` and compared whole by ``tests/property/test_golden_issues.py``.

A damaged resource is a corpus resource with one to three changes (a value dropped, replaced,
wrapped in an array or taken out of one, an item repeated, an element added), drawn with a fixed
seed; the file keeps the changes, so each resource is made again the same way.

    .venv/bin/python -m tests.validation_golden   # writes the file again (say why in the commit)
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

from tests.validation_corpus import ROOT, Case, cases

GOLDEN = ROOT / "tests" / "data" / "validation" / "golden.json"
SEED = 20261201
DAMAGED = 400
HOW = ("drop", "wrap", "unwrap", "twice", "add", "replace")
REPLACEMENTS: tuple[Any, ...] = (None, True, False, -3, -1, 0, 1, 3, "", " x", "a", "2026-02-30", "#x",
                                 {}, [], {"foo": 1}, [None])
Damage = tuple[list[Any], str, Any]  # (place: keys and indexes, how, replacement)


def places(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a JSON value, as the keys and indexes that lead to it."""
    found = [path]
    if isinstance(value, dict):
        for key, item in value.items():
            found += places(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += places(item, (*path, index))
    return found


def damage(resource: dict[str, Any], place: list[Any], how: str, replacement: Any) -> None:
    """Change ``resource`` at ``place`` (raises KeyError, IndexError or TypeError when an earlier
    change removed that place)."""
    *parents, last = place
    holder: Any = resource
    for step in parents:
        holder = holder[step]
    if how == "drop" and isinstance(holder, dict):
        del holder[last]
    elif how == "wrap":
        holder[last] = [holder[last]]
    elif how == "unwrap" and isinstance(holder[last], list) and holder[last]:
        holder[last] = holder[last][0]
    elif how == "twice" and isinstance(holder[last], list) and holder[last]:
        holder[last].append(copy.deepcopy(holder[last][0]))
    elif how == "add" and isinstance(holder[last], dict):
        holder[last]["valueFoo" if replacement is None else "unknownThing"] = replacement
    else:
        holder[last] = copy.deepcopy(replacement)


def damaged(resource: dict[str, Any], damages: list[Damage]) -> dict[str, Any]:
    """A copy of ``resource`` with the changes made that still find their place."""
    copied = copy.deepcopy(resource)
    for place, how, replacement in damages:
        try:
            damage(copied, place, how, replacement)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change removed this place
    return copied


def draw_damages(corpus: list[Case], count: int, seed: int) -> list[tuple[str, list[Damage]]]:
    """``count`` (case id, changes) pairs drawn with ``seed`` from the corpus's non-Bundle cases."""
    chance = random.Random(seed)
    singles = [c for c in corpus if not c.is_bundle]
    drawn = []
    for _ in range(count):
        case = chance.choice(singles)
        spots = [list(p) for p in places(case.resource) if p]
        changes = [(chance.choice(spots), chance.choice(HOW), chance.choice(REPLACEMENTS))
                   for _ in range(chance.randint(1, 3))]
        drawn.append((case.id, changes))
    return drawn


def shown(issues: list[Any]) -> list[list[str]]:
    """Issues as sorted [severity, code, kind, message, expression] lists (order-free)."""
    return sorted([i.severity, i.code, i.kind, i.message, i.expression] for i in issues)


def expected(validator: Any) -> dict[str, Any]:
    """What ``validator`` reports on every corpus case and every damaged resource."""
    corpus = cases()
    by_id = {c.id: c for c in corpus}
    found: dict[str, Any] = {"seed": SEED, "corpus": {}, "damaged": []}
    for case in corpus:
        found["corpus"][case.id] = shown(validator.issues(case.resource, profile=case.profile))
    for case_id, changes in draw_damages(corpus, DAMAGED, SEED):
        case = by_id[case_id]
        issues = validator.issues(damaged(case.resource, changes), profile=case.profile)
        found["damaged"].append({"case": case_id, "damage": changes, "issues": shown(issues)})
    return found


def main() -> None:
    from fhir_migraine.validation.engine import Validator

    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps(expected(Validator.load()), indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
