"""Writes the generated checks of profile elements alone (no base structure): for a value of an
unusual shape the object checks (object_writer.py) report the base problem and hand the profile
elements there to these, which read the value as the profile does, whatever its shape.

    walk_<profile>__<element>(v, w, r, out)  # element ``node`` in the parent object v at path w
    item_<profile>__<element>(v, w, r, out)  # node's rules and elements on the value v at path w
"""

from __future__ import annotations

from fhir_migraine.validation.profile_tree import Node
from fhir_migraine.validation.rules import extension_roots, slice_of
from fhir_migraine.validation.source import FunctionWriter, Source


class ProfileWriter(FunctionWriter):
    """Writes ``walk_`` (an element in its parent) and ``item_`` (one value) functions."""

    def __init__(self, source: Source, name: str, node: Node) -> None:
        super().__init__(source, name)
        self.node = node

    def item(self) -> list[str]:
        self.lines = [f"def {self.name}(v, w, r, out):"]
        body = self._item_lines(self.node, "v", "w")
        for line in body or ["return None"]:
            self.emit(1, line)
        return self.lines

    def walk(self) -> list[str]:
        node = self.node
        self.lines = [f"def {self.name}(v, w, r, out):"]
        node_const = self.const(node, "node")
        name = node.name
        base = node.choice_base
        if base is None:
            self.emit(1, f"x = v.get({name!r})")
            self.emit(1, "if x is None:")
            if node.min:
                self.emit(2, f"too_few(out, {node_const}, 0, w + '.{name}')")
            if any(one.node.min for one in node.slices):
                self.emit(2, f"slice_limits(out, {node_const}, [0] * {len(node.slices)}, w + '.{name}')")
            self.emit(2, "return")
            self.emit(1, "many = type(x) is list")
            self.emit(1, "items = x if many else [x]")
            self.emit(1, f"where = w + '.{name}'")
        else:
            size = len(base)
            self.emit(1, f"ks = [k for k in v if k[:{size}] == {base!r} and len(k) > {size} and k[{size}].isupper()]")
            self.emit(1, "if not ks:")
            if node.min:
                self.emit(2, f"too_few(out, {node_const}, 0, w + '.{name}')")
            self.emit(2, "return")
            if node.types:
                types = self.const(frozenset(node.types), "types")
                self.emit(1, "for k in ks:")
                self.emit(2, f"if type_suffix(k, {base!r}) not in {types}:")
                self.emit(3, f"wrong_choice_type(out, {node_const}, k, w + '.' + k)")
            self.emit(1, "many = False")
            self.emit(1, "items = [v[k] for k in ks]")
            self.emit(1, f"where = w + '.' + (ks[0] if len(ks) == 1 else {name!r})")
        if node.min:
            self.emit(1, f"if len(items) < {node.min}:")
            self.emit(2, f"too_few(out, {node_const}, len(items), where)")
        if node.max is not None:
            self.emit(1, f"if len(items) > {node.max}:")
            self.emit(2, f"too_many(out, {node_const}, len(items), where)")
        body = self._item_lines(node, "y", "s")
        if not body and not node.slices:
            return self.lines
        self.emit(1, "paths = [f'{where}[{i}]' for i in range(len(items))] if many else [where]")
        if body:
            self.emit(1, "for y, s in zip(items, paths):")
            for line in body:
                self.emit(2, line)
        if node.slices:
            self._slices(node, node_const)
        return self.lines

    def _item_lines(self, node: Node, value: str, at: str) -> list[str]:
        """The rules of ``node`` on ``value`` (at path ``at``), then its elements when it is an object."""
        lines = self.rules((node,), value, at)
        if node.child_list:
            lines.append(f"if type({value}) is dict:")
            lines += [f"    {self.source.walk(child)}({value}, {at}, r, out)" for child in node.child_list]
        return lines

    def _slices(self, node: Node, node_const: str) -> None:
        """Each item to its slice (closed slicing: an item in none is an error), each slice's
        rules on its items and those of the extension it follows, then each slice's cardinality."""
        which = self.const(slice_of(node), "slice_of")
        closed = (node.slicing or {}).get("rules") == "closed"
        self.emit(1, f"counts = [0] * {len(node.slices)}")
        self.emit(1, "for y, s in zip(items, paths):")
        self.emit(2, f"j = {which}(y)")
        self.emit(2, "if j is None:")
        if closed:
            self.emit(3, f"unsliced(out, {node_const}, s)")
        self.emit(3, "continue")
        self.emit(2, "counts[j] += 1")
        for position, item_slice in enumerate(node.slices):
            lines = []
            for part in (item_slice.node, *extension_roots(item_slice.node, self.source.lookup)):
                lines += self._item_lines(part, "y", "s")
            if lines:
                self.emit(2, f"if j == {position}:")
                for line in lines:
                    self.emit(3, line)
        self.emit(1, f"slice_limits(out, {node_const}, counts, where)")
