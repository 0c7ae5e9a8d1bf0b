"""Value paths such as `tables.*.rows[*].maintenance_margin_rate`: parse, match, rewrite.

A path names values inside plain data (the merged data of a policy, or a scenario's): keys
joined by dots, list items as `[n]`, `*` for every key of a mapping, `{a,b}` for several keys
(a rate and the amount that follows from it, scaled together) and `[*]` for every item of a
list.  A key holding a dot, a bracket, a brace, a comma, a quote or a star is written in double
quotes (`"a.b"`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from engine.policy.yaml_reader import Pointer

ANY: Final = "*"  # a wildcard segment: every key of a mapping, or every item of a list

_TOKEN = re.compile(
    r'(?P<quoted>"(?:[^"\\]|\\.)*")|\[(?P<index>\d+|\*)\]|\{(?P<choice>[^{}"]*)\}'
    r'|(?P<plain>[^.\[\]{}"*]+)|(?P<star>\*)|(?P<dot>\.)'
)


class PathSyntaxError(ValueError):
    """The path text does not follow the syntax; args[0] says where."""


@dataclass(frozen=True, slots=True)
class Segment:
    """One step of a path: a key, a list index, a wildcard over keys or items, or a choice of
    keys (`choices`, written `{a,b}`, a wildcard over those keys only)."""

    key: str | int
    wildcard: bool = False
    in_list: bool = False  # written as [...]
    choices: tuple[str, ...] = ()

    def text(self) -> str:
        if self.choices:
            return "{" + ",".join(self.choices) + "}"
        if self.in_list:
            return f"[{ANY if self.wildcard else self.key}]"
        if self.wildcard:
            return ANY
        key = str(self.key)
        return key if re.fullmatch(r'[^.\[\]{}",*]+', key) else '"' + key.replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class ValuePath:
    """A parsed path; `text` is how it was written."""

    text: str
    segments: tuple[Segment, ...]

    @property
    def has_wildcard(self) -> bool:
        return any(segment.wildcard for segment in self.segments)


def parse_path(text: str) -> ValuePath:
    """Parse `text`; raise PathSyntaxError naming the offending character."""
    segments: list[Segment] = []
    position = 0
    expect_key = True  # at the start or after a dot a key (or `*`) must follow
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise PathSyntaxError(f"unexpected '{text[position]}' at character {position + 1}")
        kind = match.lastgroup
        if kind == "dot":
            if expect_key:
                raise PathSyntaxError(
                    f"a key is missing before the dot at character {position + 1}"
                )
            expect_key = True
        elif kind == "index":
            if expect_key and segments:
                raise PathSyntaxError(f"a key is missing before '[' at character {position + 1}")
            index = match.group("index")
            if index == ANY:
                segments.append(Segment(ANY, wildcard=True, in_list=True))
            else:
                segments.append(Segment(int(index), in_list=True))
            expect_key = False
        else:
            if not expect_key:
                raise PathSyntaxError(f"a dot is missing before character {position + 1}")
            if kind == "star":
                segments.append(Segment(ANY, wildcard=True))
            elif kind == "choice":
                keys = tuple(k.strip() for k in match.group("choice").split(","))
                if len(keys) < 2 or not all(keys) or len(set(keys)) != len(keys):
                    raise PathSyntaxError(
                        f"'{{...}}' at character {position + 1} needs two or more different"
                        " keys, separated by commas"
                    )
                segments.append(Segment(ANY, wildcard=True, choices=keys))
            elif kind == "quoted":
                raw = match.group("quoted")[1:-1]
                segments.append(Segment(re.sub(r"\\(.)", r"\1", raw)))
            else:
                segments.append(Segment(match.group("plain").strip()))
            expect_key = False
        position = match.end()
    if expect_key:
        raise PathSyntaxError("the path ends with a dot" if segments else "the path is empty")
    return ValuePath(text, tuple(segments))


def pointer_text(pointer: Pointer) -> str:
    """A concrete pointer written as a path (`tables.x.rows[2].rate`)."""
    parts: list[str] = []
    for part in pointer:
        segment = Segment(part, in_list=isinstance(part, int))
        parts.append(segment.text() if segment.in_list or not parts else "." + segment.text())
    return "".join(parts)


def matches(data: Any, path: ValuePath) -> list[Pointer]:
    """Every existing value the path names, in document order."""
    return list(_walk(data, path.segments, ()))


def _walk(node: Any, segments: tuple[Segment, ...], at: Pointer) -> Iterator[Pointer]:
    if not segments:
        yield at
        return
    head, rest = segments[0], segments[1:]
    if head.in_list:
        if not isinstance(node, list):
            return
        if head.wildcard:
            for index, item in enumerate(node):
                yield from _walk(item, rest, (*at, index))
        elif isinstance(head.key, int) and head.key < len(node):
            yield from _walk(node[head.key], rest, (*at, head.key))
        return
    if not isinstance(node, Mapping):
        return
    if head.wildcard:
        for key, value in node.items():
            if not head.choices or key in head.choices:
                yield from _walk(value, rest, (*at, key))
    elif head.key in node:
        yield from _walk(node[head.key], rest, (*at, head.key))


def creatable(data: Any, path: ValuePath) -> Pointer | None:
    """The pointer a wildcard-free path would create, when every missing step is a mapping key."""
    if path.has_wildcard:
        return None
    node = data
    pointer: list[str | int] = []
    for segment in path.segments:
        if segment.in_list:
            if not isinstance(node, list) or not isinstance(segment.key, int):
                return None
            if segment.key >= len(node):
                return None
            node = node[segment.key]
        else:
            if not isinstance(node, Mapping):
                return None
            node = node.get(str(segment.key), {})
        pointer.append(segment.key)
    return tuple(pointer)


def get(data: Any, pointer: Pointer) -> Any:
    node = data
    for part in pointer:
        node = node[part]
    return node


DELETE: Final = object()  # a `set` to null: the key goes away


def rewrite(data: Any, changes: Mapping[Pointer, Any]) -> dict[str, Any]:
    """The smallest `extends` child that turns `data` into `data` with `changes` applied.

    A child's mappings merge into the parent's key by key but its lists replace the parent's
    whole (engine/policy/inherit.py), so a change inside a list carries the whole list, changed;
    a change to a mapping key carries only that key, and :data:`DELETE` becomes `null`.
    """
    changed = copy.deepcopy(data)
    for pointer, value in changes.items():
        _assign(changed, pointer, value)
    child: dict[str, Any] = {}
    for pointer, value in changes.items():
        first_list = next(
            (i for i, part in enumerate(pointer) if isinstance(part, int)), len(pointer)
        )
        if first_list == len(pointer):
            _nest(child, pointer, None if value is DELETE else value)
        else:
            holder = pointer[:first_list]  # the list itself, as changed
            _nest(child, holder, get(changed, holder))
    return child


def _assign(data: Any, pointer: Pointer, value: Any) -> None:
    node = data
    for part in pointer[:-1]:
        if isinstance(node, dict) and part not in node:
            node[part] = {}
        node = node[part]
    last = pointer[-1]
    if value is DELETE:
        if isinstance(node, dict):
            node.pop(last, None)
    else:
        node[last] = copy.deepcopy(value)


def _nest(child: dict[str, Any], pointer: Pointer, value: Any) -> None:
    node = child
    for part in pointer[:-1]:
        node = node.setdefault(str(part), {})
    node[str(pointer[-1])] = copy.deepcopy(value)
