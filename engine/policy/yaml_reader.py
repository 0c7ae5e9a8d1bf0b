"""Read one YAML document into plain data plus a map of where every node came from.

Policy files are untrusted input, so the reader drives PyYAML's *event stream* and builds the data
itself with an explicit stack: no constructors (no object creation from tags), no recursive
composer (no RecursionError on deep nesting), no alias expansion (no billion-laughs blow-up).
Scalars resolve to a small, float-free set of types (str, Decimal, bool, None) so that `0.1` in a
policy is exactly ``Decimal('0.1')`` and `yes` stays a string.

JSON is YAML, and large generated files (tier tables of hundreds of markets) are written as JSON:
such a document is read by the C JSON parser (numbers still exact) and its source map is built
by the YAML reader only when a diagnostic asks where something is.  Anything the JSON reader is
unsure about (duplicate keys, odd numbers, escapes, deep nesting) takes the YAML path, so both
paths give the same data.
"""

from __future__ import annotations

import os
import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

import yaml

from engine.errors import PolicyError
from engine.numbers import NumberSyntaxError, parse_decimal
from engine.policy.json_fast import as_json
from engine.source import Diagnostic, SourceFile, Span

MAX_FILE_BYTES = 1_048_576
MAX_DEPTH = 64

Pointer: TypeAlias = tuple[str | int, ...]

_MAX_DIAGNOSTICS = 100  # a hostile file could otherwise produce one diagnostic per alias
_REUSE = "anchors, aliases and merge keys are not allowed"
_REUSE_HINT = "write the value out in full; use `extends` to reuse a policy"
_NUMBER = re.compile(r"[+-]?\d[\d_]*(?:\.\d[\d_]*)?(?:[eE][+-]?\d+)?")
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_TAG_TEXT = re.compile(r"!(?:<[^>\s]*>|[\w\-;/?:@&=+$,.!~*'()\[\]%]*)")


class _LineIndex:
    """Offset → (line, column) in O(log n); `SourceFile.position` rescans the text per call."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line) + 1)

    def position(self, offset: int) -> tuple[int, int]:
        line = bisect_right(self.starts, offset) - 1
        return line + 1, offset - self.starts[line] + 1

    def text(self, line: int) -> str | None:
        """Line `line` (1-based) without its line break, or None when out of range."""
        if not 1 <= line <= len(self.lines):
            return None
        return self.lines[line - 1].removesuffix("\r")


@dataclass(frozen=True, slots=True)
class _Scalar:
    style: str | None  # None (plain), "'", '"', '|' or '>'
    value: str
    start: int
    end: int


@dataclass(frozen=True, slots=True, repr=False, eq=False)
class SourceMap:
    """Where each node of a :class:`YamlDocument` sits in its file, keyed by pointer."""

    _source: SourceFile
    _lines: _LineIndex
    _values: dict[Pointer, Span]
    _keys: dict[Pointer, Span]
    _scalars: dict[Pointer, _Scalar]

    def value_span(self, pointer: Pointer) -> Span | None:
        """The whole node at `pointer` (a collection spans all its children)."""
        return self._values.get(tuple(pointer))

    def key_span(self, pointer: Pointer) -> Span | None:
        """The mapping key naming the last element of `pointer`; None for list items and root."""
        return self._keys.get(tuple(pointer))

    def nearest_span(self, pointer: Pointer) -> Span:
        """A span to blame for `pointer` even when the node is missing (e.g. a required key)."""
        path = tuple(pointer)
        for length in range(len(path), -1, -1):
            span = self._values.get(path[:length])
            if span is not None:
                return span
        return Span(self._source, 1, 1, 1, 1)

    def scalar_position(self, pointer: Pointer, line: int, column: int) -> tuple[int, int] | None:
        """Map a 1-based position inside the scalar's string value to its file position.

        Lets a DSL error inside an expression point at the exact character in the policy file.
        Only layouts where value characters are copied verbatim are mapped; anything that folds
        lines or decodes escapes returns None so the caller falls back to :meth:`value_span`.
        """
        info = self._scalars.get(tuple(pointer))
        if info is None or line < 1 or column < 1:
            return None
        if info.style == "|":
            return self._literal_position(info, line, column)
        if info.style not in (None, "'", '"') or line != 1:
            return None
        raw = self._source.text[info.start : info.end]
        inner, offset = raw, 0
        if info.style is not None:
            if len(raw) < 2 or raw[0] != info.style or raw[-1] != info.style:
                return None
            inner, offset = raw[1:-1], 1
        # an escape (`\t`, `''`) or a folded line break makes the value differ from its text
        if "\n" in raw or inner != info.value or column > len(inner) + 1:
            return None
        file_line, file_column = self._lines.position(info.start)
        return file_line, file_column + offset + column - 1

    def _literal_position(self, info: _Scalar, line: int, column: int) -> tuple[int, int] | None:
        value_lines = info.value.split("\n")
        if info.value.endswith("\n"):
            value_lines.pop()
        if line > len(value_lines) or column > len(value_lines[line - 1]) + 1:
            return None
        first = self._lines.position(info.start)[0] + 1  # content starts below the `|` header
        indent: int | None = None
        for number, value_line in enumerate(value_lines, start=first):
            file_text = self._lines.text(number)
            if value_line and file_text is not None:
                indent = len(file_text) - len(value_line)
                break
        target = self._lines.text(first + line - 1)
        value_line = value_lines[line - 1]
        if indent is None or indent < 0 or target is None:
            return None
        if value_line and target != " " * indent + value_line:
            return None
        return first + line - 1, indent + column


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """Parsed data (dict/list/str/Decimal/bool/None), its source, and node locations.

    The source map of a document read as JSON is built on first use (see the module docstring).
    """

    data: object
    source: SourceFile
    _spans: SourceMap | None = field(default=None, repr=False, compare=False)

    @property
    def spans(self) -> SourceMap:
        spans = self._spans
        if spans is None:
            spans = _read_events(self.source).spans
            object.__setattr__(self, "_spans", spans)
        return spans

    @property
    def spans_built(self) -> bool:
        """Whether node locations are at hand (else :meth:`has` walks the data instead)."""
        return self._spans is not None

    def has(self, pointer: Pointer) -> bool:
        """Whether the document holds a node at `pointer`, without building the source map."""
        if self._spans is not None:
            return self._spans.value_span(pointer) is not None
        node: object = self.data
        for part in pointer:
            if isinstance(node, dict) and isinstance(part, str) and part in node:
                node = node[part]
            elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
                node = node[part]  # the two branches index different types
            else:
                return False
        return True


def _offsets(event: yaml.Event) -> tuple[int, int]:
    start, end = event.start_mark, event.end_mark
    first = start.index if start else 0
    return first, (end.index if end else first)


class _TooDeep(Exception):
    """Raised by the scanner guard; args[0] is the offending offset."""


class _DepthLimitedLoader(yaml.SafeLoader):
    """SafeLoader whose scanner refuses flow nesting beyond MAX_DEPTH.

    The scanner looks ahead up to 1024 characters over unclosed `[`/`{` (each may start a simple
    key) with quadratic bookkeeping, so `[[[[...` costs ~0.5 s before the first event arrives;
    refusing at the 65th bracket keeps hostile input cheap.
    """

    def fetch_flow_collection_start(self, TokenClass: type[yaml.Token]) -> None:
        if self.flow_level >= MAX_DEPTH:
            raise _TooDeep(self.get_mark().index)
        super().fetch_flow_collection_start(TokenClass)


@dataclass(slots=True)
class _Frame:
    container: dict[str, object] | list[object]
    pointer: Pointer | None  # None: the node is discarded (it is a bad or duplicate key's value)
    start: int
    flow: bool
    last_end: int
    key: str | None = None
    awaiting_value: bool = False
    seen: dict[str, int] = field(default_factory=dict)  # key -> line of first definition


class _Builder:
    """Turns parser events into data, spans and diagnostics, one event at a time."""

    def __init__(self, source: SourceFile) -> None:
        self.source = source
        self.text = source.text
        self.lines = _LineIndex(source.text)
        self.diagnostics: list[Diagnostic] = []
        self.root: object = None
        self.values: dict[Pointer, Span] = {}
        self.keys: dict[Pointer, Span] = {}
        self.scalars: dict[Pointer, _Scalar] = {}
        self._stack: list[_Frame] = []
        self._documents = 0

    def run(self, loader: type[Any] = _DepthLimitedLoader) -> None:
        try:
            for event in yaml.parse(self.text, Loader=loader):
                if not self._handle(event) or len(self.diagnostics) >= _MAX_DIAGNOSTICS:
                    break
        except _TooDeep as exc:
            self._too_deep(int(exc.args[0]))
        except RecursionError:  # defensive: no known input reaches it with the guard above
            self._too_deep(0)
        except yaml.MarkedYAMLError as exc:
            self._syntax_error(exc)
        except yaml.reader.ReaderError as exc:
            char = exc.character if isinstance(exc.character, str) else chr(exc.character)
            message = f"character U+{ord(char):04X} is not allowed in YAML"
            self._add("E010", message, self._span(exc.position, exc.position + 1))

    def _handle(self, event: yaml.Event) -> bool:
        """Process one event; False stops reading (the rest of the file cannot be trusted)."""
        start, end = _offsets(event)
        if isinstance(event, yaml.DocumentStartEvent):
            self._documents += 1
            if self._documents > 1:
                message = "a file may hold only one YAML document"
                hint = "remove the `---` separator or split the documents into separate files"
                self._add("E017", message, self._span(start, end), hint)
                return False
        elif isinstance(event, yaml.AliasEvent):
            self._add("E012", _REUSE, self._span(start, end), _REUSE_HINT)
            self._finish(None, start, end, "an alias")
        elif isinstance(event, yaml.ScalarEvent):
            self._check_properties(event)
            self._scalar(event)
        elif isinstance(event, yaml.CollectionStartEvent):
            self._check_properties(event)
            if len(self._stack) >= MAX_DEPTH:
                self._too_deep(start)
                return False
            mapping = isinstance(event, yaml.MappingStartEvent)
            container: dict[str, object] | list[object] = {} if mapping else []
            pointer, flow = self._next_pointer(), bool(event.flow_style)
            self._stack.append(_Frame(container, pointer, start, flow, end))
        elif isinstance(event, yaml.CollectionEndEvent):
            frame = self._stack.pop()
            kind = "a mapping" if isinstance(frame.container, dict) else "a sequence"
            self._finish(frame.container, frame.start, end if frame.flow else frame.last_end, kind)
        return True

    def _scalar(self, event: yaml.ScalarEvent) -> None:
        start, end = _offsets(event)
        if event.style == "":  # libyaml's plain style; PyYAML's is None
            event.style = None
        if event.style in ("|", ">"):  # the end mark lies after trailing blank lines
            end = start + len(self.text[start:end].rstrip())
        top = self._stack[-1] if self._stack else None
        if top is not None and isinstance(top.container, dict) and not top.awaiting_value:
            self._key(top, event.value, event.style is None, self._span(start, end))
            return
        value: object = event.value
        if event.style is None:
            value = self._resolve(event.value, start, end)
        self._finish(value, start, end, "", _Scalar(event.style, event.value, start, end))

    def _resolve(self, text: str, start: int, end: int) -> object:
        """YAML 1.2 core schema minus floats: numbers become exact Decimals."""
        if text in _NULLS:
            return None
        if text in _BOOLS:
            return _BOOLS[text]
        if _NUMBER.fullmatch(text):
            try:
                return parse_decimal(text)
            except NumberSyntaxError as exc:
                self._add("E015", str(exc), self._span(start, end))
        return text

    def _key(self, frame: _Frame, text: str, plain: bool, span: Span) -> None:
        frame.awaiting_value, frame.key = True, None
        if plain and text == "<<":
            self._add("E012", _REUSE, span, _REUSE_HINT)
            return
        first = frame.seen.get(text)
        if first is not None:
            self._add("E011", f"duplicate key '{text}' (first defined at line {first})", span)
            return
        frame.seen[text] = span.line
        frame.key = text
        if frame.pointer is not None:
            self.keys[(*frame.pointer, text)] = span

    def _next_pointer(self) -> Pointer | None:
        """Pointer of the node about to start, or None when it will be discarded."""
        if not self._stack:
            return ()
        top = self._stack[-1]
        if top.pointer is None:
            return None
        if isinstance(top.container, list):
            return (*top.pointer, len(top.container))
        if top.awaiting_value and top.key is not None:
            return (*top.pointer, top.key)
        return None

    def _finish(
        self, value: object, start: int, end: int, kind: str, scalar: _Scalar | None = None
    ) -> None:
        """Attach a completed node to its parent and record where it was."""
        pointer = self._next_pointer()
        span = self._span(start, end)
        if self._stack:
            top = self._stack[-1]
            top.last_end = end
            if isinstance(top.container, list):
                top.container.append(value)
            elif top.awaiting_value:
                if top.key is not None:
                    top.container[top.key] = value
                top.awaiting_value = False
            else:  # a collection or alias was used as a mapping key
                if kind != "an alias":
                    self._add("E016", f"mapping keys must be strings, found {kind}", span)
                top.awaiting_value, top.key = True, None
                return
        else:
            self.root = value
        if pointer is not None:
            self.values[pointer] = span
            if scalar is not None:
                self.scalars[pointer] = scalar

    def _check_properties(self, event: yaml.ScalarEvent | yaml.CollectionStartEvent) -> None:
        start, end = _offsets(event)
        if event.anchor is not None:
            found = self.text.find("&" + event.anchor, start, max(end, start + 1))
            where = found if found >= 0 else start
            span = self._span(where, where + len(event.anchor) + 1)
            self._add("E012", _REUSE, span, _REUSE_HINT)
        if event.tag is not None:
            bang = self.text.find("!", start, max(end, start + 1))
            match = _TAG_TEXT.match(self.text, bang) if bang >= 0 else None
            if match is not None:
                written, span = match.group(), self._span(match.start(), match.end())
            else:
                written = event.tag.replace("tag:yaml.org,2002:", "!!", 1)
                span = self._span(start, end)
            self._add("E013", f"tags are not allowed (found '{written}')", span)

    def _too_deep(self, index: int) -> None:
        message = f"nesting deeper than {MAX_DEPTH} levels"
        self._add("E014", message, self._span(index, index + 1))

    def _syntax_error(self, exc: yaml.MarkedYAMLError) -> None:
        mark = exc.problem_mark or exc.context_mark
        index = mark.index if mark is not None else 0
        hint = exc.context
        if hint and exc.context_mark is not None:
            line, column = self.lines.position(exc.context_mark.index)
            hint += f" (line {line}, column {column})"
        message = exc.problem or exc.context or "invalid YAML"
        self._add("E010", message, self._span(index, index + 1), hint)

    def _span(self, start: int, end: int) -> Span:
        limit = len(self.text)
        start = max(0, min(start, limit))
        end = max(start, min(end, limit))
        line, column = self.lines.position(start)
        end_line, end_column = self.lines.position(end)
        return Span(self.source, line, column, end_line, end_column)

    def _add(self, code: str, message: str, span: Span, hint: str | None = None) -> None:
        self.diagnostics.append(Diagnostic(code, message, span, hint, path=self.source.path))


def _size_error(size: int, path: str, limit: int = MAX_FILE_BYTES) -> PolicyError:
    message = f"file is {size} bytes, the limit is {limit}"
    return PolicyError(diagnostics=[Diagnostic("E002", message, path=path)])


# PyYAML's libyaml-backed parser: the same events with the same marks and exact scalar text as
# the pure-Python one (tests/policy/test_yaml_reader.py compares them), about fifteen times
# faster.  None when PyYAML was built without libyaml.
_FAST_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None)


def read_yaml(
    text: str,
    path: str,
    *,
    max_bytes: int | None = MAX_FILE_BYTES,
    exact_errors: bool = True,
) -> YamlDocument:
    """Parse `text` (named `path` in diagnostics); raise PolicyError listing every problem.

    The size cap applies here too, so callers holding text get the same protection as files;
    `max_bytes=None` lifts it for trusted local inputs (files a user imports from).  A JSON
    document's source map is built only when it is first asked for.  `exact_errors=False`
    keeps libyaml's wording of a syntax error instead of reading the text again with the slower
    pure-Python parser (for callers that only want the source map).
    """
    size = len(text.encode("utf-8", "surrogatepass"))
    if max_bytes is not None and size > max_bytes:
        raise _size_error(size, path, max_bytes)
    source = SourceFile(path, text)
    data = as_json(text, MAX_DEPTH)
    if data is not None:
        return YamlDocument(data, source)
    return _read_events(source, exact_errors=exact_errors)


def _read_events(source: SourceFile, *, exact_errors: bool = True) -> YamlDocument:
    """The YAML reader proper: data and source map from PyYAML's event stream."""
    builder = _Builder(source)
    if _FAST_LOADER is not None:
        builder.run(_FAST_LOADER)
        if builder.diagnostics and exact_errors:
            # libyaml words syntax errors differently; diagnostics are PyYAML's, documented and
            # tested verbatim, so a file with problems is read again by the pure-Python parser.
            builder = _Builder(source)
            builder.run()
    else:
        builder.run()
    if builder.diagnostics:
        raise PolicyError(diagnostics=builder.diagnostics)
    spans = SourceMap(source, builder.lines, builder.values, builder.keys, builder.scalars)
    return YamlDocument(builder.root, source, spans)


def read_yaml_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> YamlDocument:
    """Read a UTF-8 policy file, refusing oversized files before decoding or parsing them."""
    name = str(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)  # never load a huge file to learn it is huge
            if len(data) > max_bytes:
                raise _size_error(os.fstat(handle.fileno()).st_size, name, max_bytes)
    except OSError as exc:
        message = f"cannot read file: {exc.strerror or exc}"
        raise PolicyError(diagnostics=[Diagnostic("E001", message, path=name)]) from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        prefix = data[: exc.start].decode("utf-8")
        source = SourceFile(name, data.decode("utf-8", errors="replace"))
        line, column = source.position(len(prefix))
        span = Span(source, line, column, line, column + 1)
        message = f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})"
        diagnostic = Diagnostic("E001", message, span, "save the file as UTF-8", path=name)
        raise PolicyError(diagnostics=[diagnostic]) from exc
    return read_yaml(text.removeprefix("\ufeff"), name, max_bytes=max_bytes)


def span_locator(spans: SourceMap | None) -> Callable[[Pointer, bool], Span | None]:
    """A `locate(pointer, key)` for diagnostics about data read with this reader.

    The key's span when asked and present, else the value's, else the nearest existing
    ancestor's; always None when the data did not come from a file (plain dicts).
    """

    def locate(pointer: Pointer, key: bool) -> Span | None:
        if spans is None:
            return None
        if key:
            found = spans.key_span(pointer)
            if found is not None:
                return found
        return spans.value_span(pointer) or spans.nearest_span(pointer)

    return locate
