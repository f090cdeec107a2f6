"""The strict JSON reader on large documents: a problem deep inside still names its path, whether
the document's text has surrogate escapes (then every text is checked) or not (then none is)."""

from __future__ import annotations

import json

import pytest

from fhir_migraine.documents import parse_json
from fhir_migraine.errors import UnreadableInput

BIG = {"entry": [{"resource": {"resourceType": "Observation", "id": f"o{i}", "value": i}} for i in range(2000)]}


def paths(text: str) -> list[str]:
    with pytest.raises(UnreadableInput) as caught:
        parse_json(text)
    return [p.path for p in caught.value.problems]


def test_a_large_clean_document_reads_as_plain_json() -> None:
    text = json.dumps(BIG)
    assert parse_json(text) == json.loads(text)


def test_a_lone_surrogate_escape_deep_in_a_large_document_is_located() -> None:
    text = json.dumps(BIG).replace('"o1999"', '"\\ud800"')
    assert paths(text) == ["$.entry[1999].resource.id"]


def test_a_key_with_a_lone_surrogate_escape_is_located() -> None:
    text = json.dumps(BIG).replace('"value": 1500', '"\\udfff": 1500')
    assert paths(text) == ['$.entry[1500].resource["\\udfff"]']


def test_a_repeated_key_deep_in_a_large_document_is_located() -> None:
    text = json.dumps(BIG).replace('"value": 1234', '"value": 1234, "value": 5')
    assert paths(text) == ["$.entry[1234].resource.value"]


def test_an_escaped_backslash_before_u_d800_is_text() -> None:
    assert parse_json('{"a": "\\\\ud800"}') == {"a": "\\ud800"}
