"""Protocol YAML read strictly: PyYAML's safe loader with its composer hooked so that anchors and
aliases, tags, keys that are not text, keys given twice, nesting deeper than MAX_DEPTH and
overlong numbers are refused with the JSON path where they stand, before anything is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, MappingStartEvent, NodeEvent, ScalarEvent, SequenceStartEvent
from yaml.nodes import MappingNode, Node, SequenceNode
from yaml.resolver import Resolver

from fhir_migraine.documents import MAX_DEPTH, MAX_DIGITS, decode, json_path, read_problems
from fhir_migraine.errors import Problem, UnreadableInput

_TAG = "tag:yaml.org,2002:"
# The JSON data model and nothing else: a timestamp, a set, binary data or a merge key has no
# place in a protocol, and what the parser would build for them is not JSON.
_SCALARS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null"))
_CONTAINERS = frozenset(_TAG + t for t in ("seq", "map"))
_DROPPED_RESOLVERS = frozenset(_TAG + t for t in ("timestamp", "value"))


class _Refused(yaml.YAMLError):
    def __init__(self, path: str, message: str, line: int | None) -> None:
        super().__init__(message)
        self.problem = Problem(path, message, f"line {line}" if line is not None else None)


class _StrictComposition(Composer, SafeConstructor, Resolver):
    """The checks, on PyYAML's own hook: ``compose_node`` sees each node's event before the
    node is built, and knows the parent node and the key or index it will sit under."""

    # Unquoted dates stay text (as in JSON), and '=' is not YAML 1.1's "default value" tag.
    yaml_implicit_resolvers = {
        first: [(tag, regexp) for tag, regexp in resolvers if tag not in _DROPPED_RESOLVERS]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }

    def _start_checks(self) -> None:
        Composer.__init__(self)
        SafeConstructor.__init__(self)
        Resolver.__init__(self)
        self._paths: list[str] = []  # the path of each open container, outermost first
        self._keys: list[set[str]] = []  # the keys seen so far in each open mapping

    def _refuse(self, path: str, message: str, event: Any) -> None:
        mark = getattr(event, "start_mark", None)
        raise _Refused(path, message, mark.line + 1 if mark is not None else None)

    if TYPE_CHECKING:  # provided by the parser the loader classes below mix in
        def peek_event(self) -> Any: ...
        def dispose(self) -> None: ...

    def _compose(self, parent: Node | None, index: Any) -> Node:
        node = super().compose_node(parent, index)
        assert node is not None  # only an anchor already seen composes to None, and anchors are refused
        return node

    def compose_node(self, parent: Node | None, index: Any) -> Node:
        event = self.peek_event()
        if parent is None:
            path = "$"
        elif isinstance(parent, SequenceNode):
            path = f"{self._paths[-1]}[{index}]"
        elif index is None:  # a key of the mapping being composed
            path = self._paths[-1]
        else:
            path = json_path(self._paths[-1], [index.value])
        if isinstance(event, AliasEvent) or (isinstance(event, NodeEvent) and event.anchor is not None):
            self._refuse(path, "uses a YAML anchor or alias (& or *); protocol files have no use for them: "
                               "write each value out", event)
        if isinstance(parent, MappingNode) and index is None:
            return self._compose_key(parent, path, event)
        if isinstance(event, (SequenceStartEvent, MappingStartEvent)):
            if len(self._paths) >= MAX_DEPTH:
                self._refuse(path, f"is nested more than {MAX_DEPTH} levels deep", event)
            self._paths.append(path)
            self._keys.append(set())
            try:
                node = self._compose(parent, index)
            finally:
                self._paths.pop()
                self._keys.pop()
            if node.tag not in _CONTAINERS:
                self._refuse(path, f"has the YAML tag {node.tag!r}; write a plain list or mapping", event)
            return node
        node = self._compose(parent, index)
        self._check_scalar(path, node, event)
        return node

    def _compose_key(self, parent: Node, mapping: str, event: Any) -> Node:
        if not isinstance(event, ScalarEvent):
            self._refuse(mapping, "has a key that is not text (a list or mapping as a key)", event)
        node = self._compose(parent, None)
        key = str(node.value)
        if node.tag == _TAG + "merge":
            self._refuse(mapping, "uses a YAML merge key (<<); write each field out", event)
        if node.tag != _TAG + "str":
            self._refuse(json_path(mapping, [key]), "is a key that is not text; write it in quotes", event)
        if key in self._keys[-1]:
            self._refuse(json_path(mapping, [key]), "appears twice", event)
        self._keys[-1].add(key)
        return node

    def _check_scalar(self, path: str, node: Node, event: Any) -> None:
        if node.tag not in _SCALARS:
            self._refuse(path, f"has the YAML tag {node.tag!r}; write a plain value", event)
        if node.tag in (_TAG + "int", _TAG + "float"):
            text = str(node.value).lower()
            # An integer counts every digit of any base (0x..., 1:30), a float those before its exponent.
            digits = sum(c.isalnum() for c in text) if node.tag == _TAG + "int" else sum(c.isdigit() for c in text.split("e")[0])
            if digits > MAX_DIGITS:
                self._refuse(path, f"is a number of {digits} digits; at most {MAX_DIGITS} are read", event)


class StrictLoader(_StrictComposition, yaml.SafeLoader):
    """The pure-Python safe loader with the strict checks."""

    def __init__(self, stream: str) -> None:
        yaml.SafeLoader.__init__(self, stream)
        self._start_checks()


def _loader_class() -> type[_StrictComposition]:
    """With libyaml, its event parser under the same Python composer: about four times faster
    on a body at the size limit, with the same checks."""
    if not yaml.__with_libyaml__:  # pragma: no cover - PyYAML built without libyaml
        return StrictLoader
    from yaml._yaml import CParser

    class FastStrictLoader(_StrictComposition, CParser):  # type: ignore[misc]
        def __init__(self, stream: str) -> None:
            CParser.__init__(self, stream)
            self._start_checks()

    return FastStrictLoader


_LOADER = _loader_class()


def parse_yaml(data: str | bytes, what: str = "protocol") -> Any:
    """A document from YAML (or JSON) text; UnreadableInput naming the path or line otherwise."""
    text = decode(data, what)
    loader = _LOADER(text)  # type: ignore[call-arg]
    try:
        node = loader.get_single_node()
        document = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise UnreadableInput.of([exc.problem], what) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None)
        reason = f": {problem}" if problem else ""
        raise UnreadableInput.of([Problem("$", f"is not valid YAML or JSON{where}{reason}")], what) from None
    finally:
        loader.dispose()
    problems = read_problems(document)
    if problems:
        raise UnreadableInput.of(problems, what)
    return document
