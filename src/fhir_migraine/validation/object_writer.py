"""Writes the generated check of objects of one type under some profile elements (none: the base
spec alone): the base structure and the profile rules as straight-line code, with the common
shapes checked inline and each unusual shape (null, an array where none belongs, several types of
a choice, an unknown element) in a branch that reports it through a small report helper and hands
the profile elements there to their walks (profile_writer.py).

    check_<Type>[__<profile>__<element>...](v, p, c, out, r)  # object, location, Context, issues, resource
"""

from __future__ import annotations

from fhir_migraine.validation import structure
from fhir_migraine.validation.profile_tree import UNBOUNDED, Node
from fhir_migraine.validation.rules import extension_roots, slice_of, type_suffix
from fhir_migraine.validation.source import FunctionWriter, Implied, Nodes, Source, implied_by_slice

_RESOURCE_RARE = ("implicitRules", "language", "text", "contained", "extension", "modifierExtension")


class ObjectWriter(FunctionWriter):
    """Writes the check of one type under some profile nodes."""

    def __init__(self, source: Source, name: str, type_name: str, nodes: Nodes, implied: Implied = ()) -> None:
        super().__init__(source, name)
        self.type_name = type_name
        self.nodes = nodes
        self.implied = implied
        found = structure.definition(type_name)
        assert found is not None, type_name
        self.definition = found
        self.after: list[str] = []  # functions and tables written after this one (choice types)

    def function(self) -> list[str]:
        self.lines = [f"def {self.name}(v, p, c, out, r):"]
        self.emit(1, "if type(v) is not dict:")
        self.emit(2, f"not_object(out, {self.type_name!r}, path_text(p))")
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
            holds = self.const(invariant.holds, invariant.key.replace("-", "_"))
            self.emit(1, f"if ({invariant.when.format('v')}) and not {holds}(v):")
            self.emit(2, f"{self.const(invariant.report, 'report')}(path_text(p), out)")
        done.update(e.name for e in rare)
        for node in self.nodes:
            for child in node.child_list:
                if child.name not in done:  # a profile element the type has under no such name
                    self.emit(1, f"{self.source.walk(child)}(v, path_text(p), r, out)")
        # Keys not met so far: the rare elements, then what is left (primitive extensions, unknown
        # elements); an object that is all met needs neither look.
        self.emit(1, "if n != len(v):")
        self.shift = 1
        for element in rare:
            self._element(element, ())
        if rare:
            self.emit(1, "if n != len(v):")
            self.shift = 2
        self._unknown()
        self.shift = 0
        return self.lines + self.after

    # -- pieces ----------------------------------------------------------------------------------

    def _rare(self, element: structure.Element) -> bool:
        """Elements most objects lack (extensions, a datatype's id, a resource's narrative...):
        the written check looks for them last, and only when there are keys left to account for."""
        if element.required or element.choice is not None or self._kids(element.name):
            return False
        return element.name in (_RESOURCE_RARE if self._is_resource() else ("id", "extension", "modifierExtension"))

    def _is_resource(self) -> bool:
        return "implicitRules" in self.definition.elements

    def _kids(self, name: str) -> Nodes:
        return tuple(node.children[name] for node in self.nodes if name in node.children)

    def _walks(self, depth: int, kids: Nodes) -> None:
        """The profile elements ``kids`` read by their walks (a value of an unusual shape)."""
        for kid in kids:
            self.emit(depth, f"{self.source.walk(kid)}(v, path_text(p), r, out)")

    def _unknown(self) -> None:
        """Keys that are no element of the type. Under a profile, whose rules may read such a key
        otherwise (a ``valueFoo`` is a value[x] to them), the object is checked again: its base
        structure by the type's own check, its profile elements by their walks."""
        elements = self.definition.elements
        known = frozenset(elements) | {"resourceType", "fhir_comments"} | {f"_{n}" for n, e in elements.items() if e.primitive}
        known_name = self.const(known, "known")
        if not self.nodes:
            self.emit(1, "for k in v:")
            self.emit(2, f"if k not in {known_name}:")
            self.emit(3, f"unknown_element(out, {self.type_name!r}, k, path_text(p))")
            return
        self.emit(1, f"if not {known_name}.issuperset(v):")
        self.emit(2, "del out[m:]")
        self.emit(2, f"{self.source.check(self.type_name, ())}(v, p, c, out, r)")
        for node in self.nodes:
            for child in node.child_list:
                self.emit(2, f"{self.source.walk(child)}(v, path_text(p), r, out)")

    def _collect(self) -> None:
        """References and codings, gathered for the checks made after the walk."""
        if self.type_name == "Reference":
            # Only references to a contained resource or to a Bundle entry are looked up later.
            self.emit(1, "rf = v.get('reference')")
            self.emit(1, "if type(rf) is str and (rf[:1] == '#' or rf[:4] == 'urn:') and c.references is not None:")
            self.emit(2, "c.references.append(((p, '.reference'), rf))")
        elif self.type_name == "Coding":
            self.emit(1, "sy = v.get('system')")
            self.emit(1, "if type(sy) is str and sy in CODE_SYSTEMS and type(v.get('code')) is str and c.codings is not None:")
            self.emit(2, "c.codings.append((p, sy, v['code']))")

    def _known(self) -> None:
        """A Coding that is exactly one the package lists (its system, code and display, or the
        first two) is valid as it stands, and so is a CodeableConcept of that one Coding alone:
        one look-up instead of their checks."""
        if self.nodes or not self.source.known_codings:
            return
        listed = ("k == 3 and (sy, {0}.get('code'), {0}.get('display')) in KNOWN_CODINGS "
                  "or k == 2 and (sy, {0}.get('code')) in KNOWN_CODINGS")
        if self.type_name == "Coding":
            self.emit(1, "try:")
            self.emit(2, "k = len(v)")
            self.emit(2, f"if {listed.format('v')}:")
            self.emit(3, "return")
            self.emit(1, "except TypeError:  # a part that cannot be looked up is checked below")
            self.emit(2, "pass")
        elif self.type_name == "CodeableConcept":
            self.emit(1, "cl = v.get('coding') if len(v) == 1 else None")
            self.emit(1, "if type(cl) is list and len(cl) == 1 and type(cl[0]) is dict:")
            self.emit(2, "cd = cl[0]")
            self.emit(2, "sy = cd.get('system')")
            self.emit(2, "try:")
            self.emit(3, "k = len(cd)")
            self.emit(3, f"if {listed.format('cd')}:")
            self.emit(4, "if sy in CODE_SYSTEMS and c.codings is not None:")
            self.emit(5, "c.codings.append((((p, '.coding'), 0), sy, cd['code']))")
            self.emit(4, "return")
            self.emit(2, "except TypeError:  # a part that cannot be looked up is checked below")
            self.emit(3, "pass")

    def _generic(self, element: structure.Element, kids: Nodes) -> bool:
        """Whether an element is checked by its base branch and its profile walks alone (shapes
        of rules rare in profiles)."""
        if element.primitive and element.repeats:
            return True
        if not kids:
            return False
        sliced = [kid for kid in kids if kid.slices]
        return element.fhir_type == "Resource" or len(sliced) > 1 or (bool(sliced) and not element.repeats)

    def _element(self, element: structure.Element, kids: Nodes) -> None:
        name = element.name
        self.emit(1, f"if {name!r} in v:")
        self.emit(2, f"x = v[{name!r}]")
        self.emit(2, "n += 1")
        generic = self._generic(element, kids)
        if generic:
            self._base(2, element, name)
        else:
            self._present(2, element, kids, name)
        absent = []
        if element.required:
            absent.append(f"if {'_' + name!r} not in v:")
            absent.append(f"    missing(out, {self.type_name!r}, {name!r}, path_text(p) + '.{name}')")
        for kid in kids if not generic else ():
            if kid.min:
                absent.append(f"too_few(out, {self.const(kid, 'node')}, 0, path_text(p) + '.{name}')")
            if any(one.node.min for one in kid.slices):  # with no items only a slice's min can fail
                absent.append(f"slice_limits(out, {self.const(kid, 'node')}, [0] * {len(kid.slices)}, "
                              f"path_text(p) + '.{name}')")
        if absent:
            self.emit(1, "else:")
            for line in absent:
                self.emit(2, line)
        if generic:
            self._walks(1, kids)

    def _present(self, depth: int, element: structure.Element, kids: Nodes, key: str) -> None:
        """The check of ``x``, the value of ``key``, when it is present."""
        at = f"(p, '.{key}')"
        if element.primitive:
            self.emit(depth, f"if not {self._accepts(element, 'x')}:")
            self._odd(depth + 1, element, kids, key)
            body = self._counted(kids, "1", at) + self.rules(kids, "x", f"path_text({at})", self.implied)
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
            for line in self._counted(kids, "1", "q") + self.rules(kids, "x", "path_text(q)", self.implied):
                self.emit(depth + 1, line)
            self.emit(depth + 1, self._item_call(element, kids, "x", "q"))
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
                for line in self.rules(kids, "y", "path_text(s)", self.implied):
                    self.emit(depth + 2, line)
                self.emit(depth + 2, self._item_call(element, kids, "y", "s"))
        self.emit(depth, "else:")
        self._odd(depth + 1, element, kids, key)

    def _odd(self, depth: int, element: structure.Element, kids: Nodes, key: str) -> None:
        """``x`` of a shape the inline check does not take: its base problem, then the profile
        elements read by their walks."""
        self._base(depth, element, key)
        self._walks(depth, kids)

    def _base(self, depth: int, element: structure.Element, key: str) -> None:
        """The base-spec check of ``x``, the value of ``key``, whatever its shape."""
        element_name = self.const(element, f"element_{key}")
        where = f"path_text(p) + '.{key}'"
        type_name = repr(self.type_name)
        if element.primitive and element.fhir_type in structure.POINTER_TYPES:
            if element.repeats:
                self.emit(depth, "if c.pointers is not None and type(x) is list:")
                self.emit(depth + 1, "c.pointers.extend(y for y in x if type(y) is str and y[:1] == '#')")
            else:
                self.emit(depth, "if c.pointers is not None and type(x) is str and x[:1] == '#':")
                self.emit(depth + 1, "c.pointers.append(x)")
        if element.repeats:
            self.emit(depth, "if type(x) is not list:")
            self.emit(depth + 1, f"not_array(out, {element_name}, {type_name}, {where})")
            self.emit(depth, "else:")
            self.emit(depth + 1, "if not x:")
            self.emit(depth + 2, f"empty_array(out, {element_name}, {type_name}, {where})")
            self.emit(depth + 1, "for i, y in enumerate(x):")
            if element.primitive:
                self.emit(depth + 2, f"if not {self._accepts(element, 'y')}:")
                self.emit(depth + 3, f"bad_primitive(out, y, {element_name}, {type_name}, path_text(((p, '.{key}'), i)))")
            elif element.fhir_type == "Resource":
                self.emit(depth + 2, f"resource_item(y, path_text(((p, '.{key}'), i)), c, out)")
            else:
                self.emit(depth + 2, f"{self.source.check(element.fhir_type, ())}(y, ((p, '.{key}'), i), c, out, r)")
            return
        if element.primitive:
            self.emit(depth, f"if not {self._accepts(element, 'x')}:")
            self.emit(depth + 1, "if type(x) is list:")
            self.emit(depth + 2, f"an_array(out, {element_name}, {type_name}, {where})")
            self.emit(depth + 1, "else:")
            self.emit(depth + 2, f"bad_primitive(out, x, {element_name}, {type_name}, {where})")
            return
        self.emit(depth, "if type(x) is list:")
        self.emit(depth + 1, f"an_array(out, {element_name}, {type_name}, {where})")
        if element.fhir_type == "Resource":
            self.emit(depth, "else:")
            self.emit(depth + 1, f"resource_item(x, {where}, c, out)")
            return
        self.emit(depth, "elif type(x) is dict:")
        self.emit(depth + 1, f"{self.source.check(element.fhir_type, ())}(x, (p, '.{key}'), c, out, r)")
        self.emit(depth, "else:")
        self.emit(depth + 1, f"not_object(out, {element.fhir_type!r}, {where})")

    def _sliced(self, depth: int, element: structure.Element, kids: Nodes, sliced: Node) -> None:
        """The items of a sliced element: each finds its slice and is checked once, under the
        element's rules and its slice's (and the extension definition a slice follows)."""
        which = self.const(slice_of(sliced), f"slice_of_{element.name}")
        node = self.const(sliced, "node")
        self.emit(depth, f"counts = [0] * {len(sliced.slices)}")
        self.emit(depth, "for i, y in enumerate(x):")
        self.emit(depth + 1, "s = (q, i)")
        for line in self.rules(kids, "y", "path_text(s)", self.implied):
            self.emit(depth + 1, line)
        self.emit(depth + 1, f"j = {which}(y)")
        self.emit(depth + 1, "if j is None:")
        if (sliced.slicing or {}).get("rules") == "closed":
            self.emit(depth + 2, f"unsliced(out, {node}, path_text(s))")
        self.emit(depth + 2, self._item_call(element, kids, "y", "s"))
        self.emit(depth + 1, "else:")
        self.emit(depth + 2, "counts[j] += 1")
        for position, item_slice in enumerate(sliced.slices):
            extra = (item_slice.node, *extension_roots(item_slice.node, self.source.lookup))
            self.emit(depth + 2, f"{'if' if position == 0 else 'elif'} j == {position}:")
            for line in self.rules(extra, "y", "path_text(s)"):
                self.emit(depth + 3, line)
            self.emit(depth + 3, self._item_call(element, kids + extra, "y", "s", implied_by_slice(element, sliced, position)))
        broken = [f"counts[{j}] < {one.node.min}" for j, one in enumerate(sliced.slices) if one.node.min]
        broken += [f"counts[{j}] > {one.node.max}" for j, one in enumerate(sliced.slices)
                   if one.node.max is not None and one.node.max < UNBOUNDED]
        if broken:
            self.emit(depth, f"if {' or '.join(broken)}:")
            self.emit(depth + 1, f"slice_limits(out, {node}, counts, path_text(q))")

    def _counted(self, kids: Nodes, count: str, at: str) -> list[str]:
        """The profile's min and max on a present element holding ``count`` values."""
        lines = []
        for kid in kids:
            if kid.min is not None and kid.min > 1:
                lines += [f"if {count} < {kid.min}:", f"    too_few(out, {self.const(kid, 'node')}, {count}, path_text({at}))"]
            if kid.max is not None and (count != "1" or kid.max < 1):
                lines += [f"if {count} > {kid.max}:", f"    too_many(out, {self.const(kid, 'node')}, {count}, path_text({at}))"]
        return lines

    def _item_call(self, element: structure.Element, kids: Nodes, value: str, at: str, implied: Implied = ()) -> str:
        if element.fhir_type == "Resource":
            return f"resource_item({value}, path_text({at}), c, out)"
        return f"{self.source.check(element.fhir_type, kids, implied)}({value}, {at}, c, out, r)"

    def _accepts(self, element: structure.Element, value: str) -> str:
        """A Python expression true when the primitive ``value`` is valid as it is."""
        if element.codes is not None:
            return f"(type({value}) is str and {value} in {self.const(element.codes, 'codes')})"
        template = structure.FAST_TEMPLATES.get(element.fhir_type)
        if template is not None:
            return f"({template.format(value)})"
        pattern = structure.PRIMITIVE_REGEX.get(element.fhir_type)
        if pattern is None:
            return "False"  # no quick form: every value is worded by bad_primitive
        match = self.const(pattern.fullmatch, f"{element.fhir_type}_match")
        day = f" and real_day({value})" if element.fhir_type in structure.CALENDAR_TYPES else ""
        return f"(type({value}) is str and {match}({value}) is not None{day})"

    def _choice(self, group: str, kids: Nodes) -> None:
        """A choice ``group[x]``: one type present is checked by that type's function; several, or
        a profile rule this code does not write out, by the base branch of each and the walks."""
        names = self.definition.choices[group]
        required = group in self.definition.required_choices
        prefixed = {n for n in self.definition.elements
                    if n.startswith(group) and len(n) > len(group) and n[len(group)].isupper()}
        self.emit(1, f"g = {self.const(frozenset(names), 'group')}.intersection(v)")
        if prefixed != set(names) or any(kid.slices for kid in kids):
            self.emit(1, "n += len(g)")
            self._several(1, group, kids)
            return
        by_key = f"{self.name}__types_{group}"
        self.emit(1, "if len(g) == 1:")
        self.emit(2, "n += 1")
        self.emit(2, "(k,) = g")
        self.emit(2, f"{by_key}[k](v, p, c, out, r)")
        self.emit(1, "elif g:")
        self.emit(2, "n += len(g)")
        self._several(2, group, kids)
        absent = [kid for kid in kids if kid.min]
        if required or absent:
            self.emit(1, "else:")
            if required:
                self.emit(2, f"missing(out, {self.type_name!r}, '{group}[x]', path_text(p) + '.{group}')")
            for kid in absent:
                self.emit(2, f"too_few(out, {self.const(kid, 'node')}, 0, path_text(p) + '.{kid.name}')")
        functions = {name: self._choice_key(name, group, kids) for name in names}
        self.after.append(f"{by_key} = {{{', '.join(f'{k!r}: {f}' for k, f in functions.items())}}}")

    def _several(self, depth: int, group: str, kids: Nodes) -> None:
        """Each type of the choice present, how many there are, and the profile walks of the group."""
        names = self.definition.choices[group]
        for name in names:
            self.emit(depth, f"if {name!r} in v:")
            self.emit(depth + 1, f"x = v[{name!r}]")
            self._base(depth + 1, self.definition.elements[name], name)
        required = group in self.definition.required_choices
        self.emit(depth, f"choice_count(v, {self.type_name!r}, {group!r}, {names!r}, {required}, path_text(p), out)")
        self._walks(depth, kids)

    def _choice_key(self, key: str, group: str, kids: Nodes) -> str:
        """The check of one type of a choice, as a function of its own (written after this one)."""
        element = self.definition.elements[key]
        writer = ObjectWriter(self.source, f"{self.name}__{key}", self.type_name, self.nodes, self.implied)
        writer.lines = [f"def {writer.name}(v, p, c, out, r):", f"    x = v[{key!r}]"]
        for kid in kids:
            if kid.types and type_suffix(key, group) not in kid.types:
                writer.emit(1, f"wrong_choice_type(out, {writer.const(kid, 'node')}, {key!r}, path_text(p) + '.{key}')")
        writer._present(1, element, kids, key)
        self.after.extend(writer.lines)
        return writer.name

