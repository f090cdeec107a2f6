"""Writes the Python source of one generated check (see codegen.py): for one type, under some
profile nodes, the base structure and the profile rules of an object as straight-line code."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from fhir_migraine.validation import structure
from fhir_migraine.validation.compile import UNBOUNDED, Node
from fhir_migraine.validation.issues import Issue
from fhir_migraine.validation.rules import (
    child_check,
    extension_roots,
    rules_of,
    slice_limits,
    slice_of,
    slices_check,
    type_suffix,
)

if TYPE_CHECKING:
    from fhir_migraine.validation.codegen import Program

# (value, path, context, issues, resource): the check of one object of a type.
ObjectCheck = Callable[[Any, str, structure.Context, list[Issue], dict[str, Any]], None]
Nodes = tuple[Node, ...]


class Writer:
    """Writes the check of one type under some profile nodes (none: the base spec alone)."""

    def __init__(self, program: Program, type_name: str, nodes: Nodes) -> None:
        self.program = program
        self.type_name = type_name
        self.nodes = nodes
        self.definition = structure.definition(type_name)
        self.lines: list[str] = []
        self.shift = 0  # extra indentation of what emit() writes

    def function(self, name: str) -> list[str]:
        """The source of the check as ``name(v, p, c, out, r)``: the object, its location, the
        walk's Context, the issues found so far, the resource."""
        self.lines = [f"def {name}(v, p, c, out, r):"]
        if self.definition is None:
            self.emit(1, "return None")
            return self.lines
        slow = self._slow()
        self.emit(1, "if type(v) is not dict:")
        self.emit(2, f"{self.const(slow, 'slow')}(v, path_text(p), c, out, r)")
        self.emit(2, "return")
        self.emit(1, "if not v:")
        self.emit(2, "empty_object(path_text(p), out)")
        if self.nodes:
            self.emit(1, "m = len(out)")
        # A resource's resourceType is counted here, so a valid resource needs no look at the rest.
        self.emit(1, "n = 1 if 'resourceType' in v else 0" if self._is_resource() else "n = 0")
        self._collect()
        self._known()
        done: set[str] = set()
        rare = [e for e in self.definition.elements.values() if self._rare(e)]
        for element in self.definition.elements.values():
            if element.choice is None and element not in rare:
                done.add(element.name)
                self._element(element, self._kids(element.name))
            elif element.choice is not None and element.choice not in done:
                done.update((element.choice, f"{element.choice}[x]"))
                self._choice(element.choice, self._kids(f"{element.choice}[x]"))
        for invariant in structure.base_invariants(self.type_name):
            self.emit(1, f"if ({invariant.when.format('v')}) and not {self.const(invariant.holds, invariant.key.replace('-', '_'))}(v):")
            self.emit(2, f"{self.const(invariant.report, 'report')}(path_text(p), out)")
        done.update(e.name for e in rare)
        for node in self.nodes:
            for child in node.child_list:
                if child.name not in done:  # a profile element the type has under no such name
                    self.emit(1, f"{self.const(child_check(child, self.program.lookup), 'profile')}(v, path_text(p), r, out)")
        # Keys not met so far: the rare elements, then what is left (primitive extensions, unknown
        # elements); an object that is all met needs neither look.
        rest = self.const(self._rest(slow), "rest")
        self.emit(1, "if n != len(v):")
        self.shift = 1
        for element in rare:
            self._element(element, ())
        if rare:
            self.emit(1, "if n != len(v):")
            self.shift = 2
        self.emit(1, f"{rest}(v, path_text(p), c, out, r, {'m' if self.nodes else 0})")
        self.shift = 0
        return self.lines

    # -- pieces ----------------------------------------------------------------------------------

    def emit(self, depth: int, line: str) -> None:
        self.lines.append("    " * (depth + self.shift) + line)

    def _rare(self, element: structure.Element) -> bool:
        """Elements most objects lack (extensions, a datatype's id, a resource's narrative...):
        the written check looks for them last, and only when there are keys left to account for."""
        if element.required or element.choice is not None or self._kids(element.name):
            return False
        if self._is_resource():
            return element.name in ("implicitRules", "language", "text", "contained", "extension", "modifierExtension")
        return element.name in ("id", "extension", "modifierExtension")

    def const(self, value: Any, hint: str) -> str:
        return self.program.constant(value, hint)

    def _is_resource(self) -> bool:
        assert self.definition is not None
        return "implicitRules" in self.definition.elements

    def _kids(self, name: str) -> Nodes:
        return tuple(node.children[name] for node in self.nodes if name in node.children)

    def _slow(self) -> ObjectCheck:
        """The closures' check of an object: the base structure, then the profile elements."""
        structure_check = structure.checker(self.type_name)
        children = tuple(child_check(child, self.program.lookup) for node in self.nodes for child in node.child_list)

        def slow(value: Any, path: str, context: structure.Context, out: list[Issue], resource: dict[str, Any]) -> None:
            structure_check(value, path, context, out)
            if type(value) is dict:
                for child in children:
                    child(value, path, resource, out)
        return slow

    def _rest(self, slow: ObjectCheck) -> Callable[..., None]:
        """What the written code did not count: primitive extensions, unknown elements. With an
        unknown element the profile rules may read the object otherwise (a ``valueFoo`` is a
        value[x] to them), so the object is checked again by the closures."""
        assert self.definition is not None
        elements = self.definition.elements
        extras = {"resourceType", "fhir_comments"} | {f"_{n}" for n, e in elements.items() if e.primitive}
        type_name = self.type_name
        profiled = bool(self.nodes)

        def rest(value: dict[str, Any], path: str, context: structure.Context, out: list[Issue],
                 resource: dict[str, Any], mark: int) -> None:
            unknown = [k for k in value if k not in elements and k not in extras]
            if unknown and profiled:
                del out[mark:]
                slow(value, path, context, out, resource)
                return
            for key in unknown:
                structure.unknown_element(out, type_name, key, path)
        return rest

    def _collect(self) -> None:
        """References and codings, gathered for the checks made after the walk."""
        if self.type_name == "Reference":
            # Only references to a contained resource or to a Bundle entry are looked up later.
            self.emit(1, "rf = v.get('reference')")
            self.emit(1, "if type(rf) is str and (rf[:1] == '#' or rf[:4] == 'urn:') and c.references is not None:")
            self.emit(2, "c.references.append(((p, '.reference'), rf))")
        elif self.type_name == "Coding":
            systems = self.const(self.program.code_systems, "code_systems")
            self.emit(1, "sy = v.get('system')")
            self.emit(1, f"if type(sy) is str and sy in {systems} and type(v.get('code')) is str and c.codings is not None:")
            self.emit(2, "c.codings.append((p, sy, v['code']))")

    def _known(self) -> None:
        """A Coding that is exactly one the package lists (its system, code and display, or the
        first two) is valid as it stands, and so is a CodeableConcept of that one Coding alone:
        one look-up instead of their checks."""
        if self.nodes or not self.program.known_codings:
            return
        known = self.const(self.program.known_codings, "known_codings")
        listed = (f"k == 3 and (sy, {{0}}.get('code'), {{0}}.get('display')) in {known} "
                  f"or k == 2 and (sy, {{0}}.get('code')) in {known}")
        if self.type_name == "Coding":
            self.emit(1, "try:")
            self.emit(2, "k = len(v)")
            self.emit(2, f"if {listed.format('v')}:")
            self.emit(3, "return")
            self.emit(1, "except TypeError:  # a part that cannot be looked up is checked below")
            self.emit(2, "pass")
        elif self.type_name == "CodeableConcept":
            systems = self.const(self.program.code_systems, "code_systems")
            self.emit(1, "cl = v.get('coding') if len(v) == 1 else None")
            self.emit(1, "if type(cl) is list and len(cl) == 1 and type(cl[0]) is dict:")
            self.emit(2, "cd = cl[0]")
            self.emit(2, "sy = cd.get('system')")
            self.emit(2, "try:")
            self.emit(3, "k = len(cd)")
            self.emit(3, f"if {listed.format('cd')}:")
            self.emit(4, f"if sy in {systems} and c.codings is not None:")
            self.emit(5, "c.codings.append((((p, '.coding'), 0), sy, cd['code']))")
            self.emit(4, "return")
            self.emit(2, "except TypeError:  # a part that cannot be looked up is checked below")
            self.emit(3, "pass")

    def _wholes(self, kids: Nodes) -> list[str]:
        """Calls of the closures' check of each profile element, for a value of a rare shape."""
        return [f"{self.const(child_check(kid, self.program.lookup), 'profile')}(v, path_text(p), r, out)" for kid in kids]

    def _generic(self, element: structure.Element, kids: Nodes) -> bool:
        """Whether an element is left to the closures whole (shapes of rules rare in profiles)."""
        if element.primitive and element.repeats:
            return True
        if not kids:
            return False
        sliced = [kid for kid in kids if kid.slices]
        return element.fhir_type == "Resource" or len(sliced) > 1 or (bool(sliced) and not element.repeats)

    def _element(self, element: structure.Element, kids: Nodes) -> None:
        name = element.name
        handler = self.const(structure.handler(element), f"h_{name}")
        self.emit(1, f"if {name!r} in v:")
        self.emit(2, f"x = v[{name!r}]")
        self.emit(2, "n += 1")
        generic = self._generic(element, kids)
        if generic:
            self.emit(2, f"{handler}(x, path_text(p), {name!r}, c, out)")
        else:
            self._present(2, element, kids, name, handler)
        absent = []
        if element.required:
            absent.append(f"if {'_' + name!r} not in v:")
            absent.append(f"    missing(out, {self.type_name!r}, {name!r}, path_text(p) + '.{name}')")
        for kid in kids if not generic else ():
            if kid.min:
                absent.append(f"too_few(out, {kid.name!r}, {kid.min}, 0, path_text(p) + '.{name}')")
            if any(one.node.min for one in kid.slices):  # with no items only a slice's min can fail
                slices = self.const(slices_check(kid, self.program.lookup), f"slices_{name}")
                absent.append(f"{slices}([], [], path_text(p) + '.{name}', r, out)")
        if absent:
            self.emit(1, "else:")
            for line in absent:
                self.emit(2, line)
        if generic:
            for line in self._wholes(kids):
                self.emit(1, line)

    def _present(self, depth: int, element: structure.Element, kids: Nodes, key: str, handler: str) -> None:
        """The check of ``x``, the value of ``key``, when it is present."""
        at = f"(p, '.{key}')"
        if element.primitive:
            self.emit(depth, f"if not {self._accepts(element)}:")
            self._fallback(depth + 1, kids, key, handler)
            body = self._counted(kids, "1", at) + self._rules(kids, "x", at)
            if element.fhir_type in structure.POINTER_TYPES:
                body += ["if c.pointers is not None and x[:1] == '#':", "    c.pointers.append(x)"]
            if body:
                self.emit(depth, "else:")
                for line in body:
                    self.emit(depth + 1, line)
            return
        if not element.repeats:
            self.emit(depth, "if type(x) is dict:")
            self.emit(depth + 1, f"q = {at}")
            for line in self._counted(kids, "1", "q") + self._rules(kids, "x", "q"):
                self.emit(depth + 1, line)
            self.emit(depth + 1, f"{self._item_check(element, kids)}(x, q, c, out, r)")
        else:
            self.emit(depth, "if type(x) is list and x:")
            self.emit(depth + 1, f"q = {at}")
            for line in self._counted(kids, "len(x)", "q"):
                self.emit(depth + 1, line)
            sliced = next((kid for kid in kids if kid.slices), None)
            if sliced is not None:
                self._sliced(depth + 1, element, kids, sliced)
            else:
                self.emit(depth + 1, "for i, y in enumerate(x):")
                self.emit(depth + 2, "s = (q, i)")
                for line in self._rules(kids, "y", "s"):
                    self.emit(depth + 2, line)
                self.emit(depth + 2, f"{self._item_check(element, kids)}(y, s, c, out, r)")
        self.emit(depth, "else:")
        self._fallback(depth + 1, kids, key, handler)

    def _fallback(self, depth: int, kids: Nodes, key: str, handler: str) -> None:
        self.emit(depth, f"{handler}(x, path_text(p), {key!r}, c, out)")
        for line in self._wholes(kids):
            self.emit(depth, line)

    def _sliced(self, depth: int, element: structure.Element, kids: Nodes, sliced: Node) -> None:
        """The items of a sliced element: each finds its slice and is checked once, under the
        element's rules and its slice's (and the extension definition a slice follows)."""
        which = self.const(slice_of(sliced), f"slice_of_{element.name}")
        limits = self.const(slice_limits(sliced), f"slice_limits_{element.name}")
        self._imply(element, sliced)
        self.emit(depth, f"counts = [0] * {len(sliced.slices)}")
        self.emit(depth, "for i, y in enumerate(x):")
        self.emit(depth + 1, "s = (q, i)")
        for line in self._rules(kids, "y", "s"):
            self.emit(depth + 1, line)
        self.emit(depth + 1, f"j = {which}(y)")
        self.emit(depth + 1, "if j is None:")
        if (sliced.slicing or {}).get("rules") == "closed":
            self.emit(depth + 2, f"unsliced(out, {sliced.name!r}, path_text(s))")
        self.emit(depth + 2, f"{self._item_check(element, kids)}(y, s, c, out, r)")
        self.emit(depth + 1, "else:")
        self.emit(depth + 2, "counts[j] += 1")
        for position, item_slice in enumerate(sliced.slices):
            extra = (item_slice.node, *extension_roots(item_slice.node, self.program.lookup))
            self.emit(depth + 2, f"{'if' if position == 0 else 'elif'} j == {position}:")
            for line in self._rules(extra, "y", "s"):
                self.emit(depth + 3, line)
            self.emit(depth + 3, f"{self._item_check(element, kids + extra)}(y, s, c, out, r)")
        broken = [f"counts[{j}] < {one.node.min}" for j, one in enumerate(sliced.slices) if one.node.min]
        broken += [f"counts[{j}] > {one.node.max}" for j, one in enumerate(sliced.slices) if one.node.max is not None and one.node.max < UNBOUNDED]
        if broken:
            self.emit(depth, f"if {' or '.join(broken)}:")
            self.emit(depth + 1, f"{limits}(counts, path_text(q), out)")

    def _imply(self, element: structure.Element, sliced: Node) -> None:
        """An item found its slice by an index of the one value at the discriminator path (a
        single element of the item): that value meets the slice's fixed or pattern rule there."""
        at = sliced.slice_path
        item_type = structure.definition(element.fhir_type)
        if sliced.slice_index is None or at is None or item_type is None:
            return
        discriminating = item_type.elements.get(at)
        if discriminating is None or discriminating.repeats:
            return
        for item_slice in sliced.slices:
            target = item_slice.node.children.get(at)
            if target is None:
                continue
            if target.fixed is None:
                self.program.implied[id(target)] = "pattern"  # one coding (system, code) or a value
            elif isinstance(target.fixed, (str, int, bool)):
                # A fixed value is implied only when it is that one value: a fixed CodeableConcept
                # also wants nothing besides its coding, which the index does not look at.
                self.program.implied[id(target)] = "fixed"

    def _rules(self, nodes: Nodes, value: str, at: str) -> list[str]:
        """The rules of ``nodes`` on ``value``, each a test that calls its report when broken
        (``at``, the path, is only worked out then)."""
        lines = []
        for node in nodes:
            implied = self.program.implied.get(id(node))
            for rule in rules_of(node):
                if rule.kind == implied:
                    continue
                report = self.const(rule.report, "report")
                if rule.fixed is not None:
                    lines.append(f"if {value} != {self.const(rule.fixed, 'fixed')}:")
                else:
                    lines.append(f"if not {self.const(rule.accepts, 'accepts')}({value}, r):")
                lines.append(f"    {report}({value}, path_text({at}), out)")
        return lines

    def _counted(self, kids: Nodes, count: str, at: str) -> list[str]:
        """The profile's min and max on a present element holding ``count`` values."""
        lines = []
        for kid in kids:
            if kid.min is not None and kid.min > 1:
                lines += [f"if {count} < {kid.min}:", f"    too_few(out, {kid.name!r}, {kid.min}, {count}, path_text({at}))"]
            if kid.max is not None and (count != "1" or kid.max < 1):
                lines += [f"if {count} > {kid.max}:", f"    too_many(out, {kid.name!r}, {kid.max}, {count}, path_text({at}))"]
        return lines

    def _item_check(self, element: structure.Element, kids: Nodes) -> str:
        if element.fhir_type == "Resource":
            return "check_resource_item"
        return self.program.function(element.fhir_type, kids)

    def _accepts(self, element: structure.Element) -> str:
        """A Python expression true when the primitive ``x`` is valid as it is."""
        if element.codes is not None:
            return f"(type(x) is str and x in {self.const(element.codes, 'codes')})"
        template = structure.FAST_TEMPLATES.get(element.fhir_type)
        if template is not None:
            return f"({template.format('x')})"
        pattern = structure.PRIMITIVE_REGEX.get(element.fhir_type)
        if pattern is not None:
            match = self.const(pattern.fullmatch, f"{element.fhir_type}_match")
            day = f" and real_day(x)" if element.fhir_type in structure.CALENDAR_TYPES else ""
            return f"(type(x) is str and {match}(x) is not None{day})"
        fast = structure.primitive_check(element).fast  # type: ignore[attr-defined]
        return f"{self.const(fast, 'accepts')}(x)" if fast is not None else "False"

    def _choice(self, group: str, kids: Nodes) -> None:
        """A choice ``group[x]``: one type present is checked here; several, or a profile rule
        this code does not write out, go to the closures."""
        assert self.definition is not None
        names = self.definition.choices[group]
        required = group in self.definition.required_choices
        prefixed = {n for n in self.definition.elements
                    if n.startswith(group) and len(n) > len(group) and n[len(group)].isupper()}
        slow = self.const(self._choice_slow(group, kids), f"choice_{group}")
        self.emit(1, f"g = {self.const(frozenset(names), 'group')}.intersection(v)")
        if prefixed != set(names) or any(kid.slices for kid in kids):
            self.emit(1, "n += len(g)")
            self.emit(1, f"{slow}(v, path_text(p), c, out, r)")
            return
        by_key = self.const({name: self._choice_key(name, group, kids) for name in names}, f"types_{group}")
        self.emit(1, "if len(g) == 1:")
        self.emit(2, "n += 1")
        self.emit(2, "(k,) = g")
        self.emit(2, f"{by_key}[k](v, p, c, out, r)")
        self.emit(1, "elif g:")
        self.emit(2, "n += len(g)")
        self.emit(2, f"{slow}(v, path_text(p), c, out, r)")
        absent = [kid for kid in kids if kid.min]
        if required or absent:
            self.emit(1, "else:")
            if required:
                self.emit(2, f"missing(out, {self.type_name!r}, '{group}[x]', path_text(p) + '.{group}')")
            for kid in absent:
                self.emit(2, f"too_few(out, {kid.name!r}, {kid.min}, 0, path_text(p) + '.{kid.name}')")

    def _choice_key(self, key: str, group: str, kids: Nodes) -> ObjectCheck:
        """The check of one type of a choice, as a function of its own."""
        assert self.definition is not None
        element = self.definition.elements[key]
        handler = self.const(structure.handler(element), f"h_{key}")
        writer = Writer(self.program, self.type_name, self.nodes)
        writer.lines = ["def choice(v, p, c, out, r):", f"    x = v[{key!r}]"]
        for kid in kids:
            if kid.types and type_suffix(key, group) not in kid.types:
                writer.emit(1, f"wrong_choice_type(out, {group!r}, {kid.types!r}, {key!r}, path_text(p) + '.{key}')")
        writer._present(1, element, kids, key, handler)
        scope: dict[str, Any] = {}
        exec(compile("\n".join(writer.lines) + "\n", f"<fhir-migraine checks: {key}>", "exec"),  # noqa: S102
             self.program.namespace, scope)
        return scope["choice"]  # type: ignore[no-any-return]

    def _choice_slow(self, group: str, kids: Nodes) -> ObjectCheck:
        """The closures' check of a choice group: each type present, how many there are, and
        the profile elements on the group."""
        assert self.definition is not None
        names = self.definition.choices[group]
        handlers = tuple((name, structure.handler(self.definition.elements[name])) for name in names)
        required = group in self.definition.required_choices
        wholes = tuple(child_check(kid, self.program.lookup) for kid in kids)
        type_name = self.type_name

        def check(value: Any, path: str, context: structure.Context, out: list[Issue], resource: dict[str, Any]) -> None:
            for name, element_handler in handlers:
                if name in value:
                    element_handler(value[name], path, name, context, out)
            structure.choice_count(value, type_name, group, names, required, path, out)
            for whole in wholes:
                whole(value, path, resource, out)
        return check
