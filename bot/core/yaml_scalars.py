"""Byte-exact YAML scalar edits: locate a scalar in the original text, quote a new value, patch, confirm.

ruamel.yaml (libyaml through ruamel.yaml.clib when installed) is used only to *locate*: its events
give the line and column of every scalar, and ``bot.core.yaml_nodes`` builds light nodes from them
(and navigates them; its names are re-exported here).
The edit itself is a splice of the original text at those positions, so comments, blank lines,
quoting, flow style, anchors, indentation, CRLF and a missing final newline all survive. After
patching, the new text is parsed again and its events compared with the old ones (Renovate's
"confirm" step): only the intended scalars may differ.

Everything here is pure: it takes and returns text.
"""

from __future__ import annotations

import gc
import importlib
import itertools
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError
from ruamel.yaml.events import AliasEvent, MappingStartEvent, ScalarEvent, SequenceStartEvent

from bot.core.yaml_nodes import (
    UNDEFINED_ALIAS,
    MappingNode,
    Node,
    ScalarNode,
    SequenceNode,
    Slot,
    TextIndex,
    compose,
    fields,
    is_plain,
    lookup,
    scalar_slot,
)
from bot.errors import ManifestError

try:  # libyaml through ruamel.yaml.clib: ~20x faster than the pure-Python parser
    _CParser: Any = importlib.import_module("_ruamel_yaml").CParser
except ImportError:  # pragma: no cover - the pure parser gives the same marks, only slower
    _CParser = None

MALFORMED_YAML = "{source}:{line}:{column}: malformed YAML: {problem}"
TAB_HINT = " (YAML indentation must use spaces, not tabs)"
CONFIRM_FAILED = (
    "{source}: refusing to write: after the edit {what}; this is a bug in Ferry, please report it "
    "with the file"
)
BLOCK_SCALAR = (
    "{source}:{line}: the value is a block scalar ('|' or '>'); write it as a plain or quoted "
    "scalar so Ferry can update it"
)

_PLAIN_SAFE = re.compile(r"^\w[\w.:/@+-]*(?<!:)$")

# What YAML 1.1 (PyYAML, Helm's go-yaml v2 heritage) or 1.2 (go-yaml v3, ruamel) reads as
# something other than a string. A new plain value matching any of these is double-quoted.
_NON_STRING = re.compile(
    r"""^(?:
      ~|null|Null|NULL|
      y|Y|yes|Yes|YES|n|N|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF|
      [-+]?0b[0-1_]+|
      [-+]?0o?[0-7_]+|
      [-+]?[0-9][0-9_]*|
      [-+]?0x[0-9a-fA-F_]+|
      [-+]?[1-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|
      [-+]?(?:[0-9][0-9_]*)?\.[0-9_]*(?:[eE][-+]?[0-9]+)?|
      [-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|
      [-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN)|
      [0-9]{4}-[0-9]{1,2}-[0-9]{1,2}(?:(?:[Tt]|[ \t]+)[0-9]{1,2}:[0-9]{2}:[0-9]{2}.*)?|
      <<|=
    )$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Parsed:
    """The documents of a text, and the parser events they were built from (for the confirm step)."""

    documents: list[Node]
    events: list[Any]


@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause the cycle collector while building many small objects that hold no cycles.

    A 6,000-line file yields ~12,000 events and as many nodes; each allocation burst triggers
    collections that re-walk everything built so far, which doubles the parse time. Pausing it
    only delays collection; reference counting still frees everything as usual. Held over a whole
    bump, the events and nodes are freed before the collector runs again, so it never walks them
    (bench/bump.py: ~10 ms of a 60 ms bump). Nested pauses are one pause.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse(text: str, source: str) -> Parsed:
    """Parse every document of ``text``; raise ManifestError with file:line:column when malformed."""
    with paused_gc():
        events = parse_events(text, source)
        return Parsed(compose(events, source), events)


def parse_events(text: str, source: str) -> list[Any]:
    events: list[Any] = []
    try:
        if _CParser is not None:
            events.extend(iter(_CParser(text).get_event, None))  # None once the stream has ended
        else:  # pragma: no cover
            events.extend(YAML(typ="safe", pure=True).parse(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        problem = exc.problem or exc.context or "cannot be parsed"
        if exc.problem and exc.context and exc.context_mark is not None:
            problem += f" ({exc.context} at {exc.context_mark.line + 1}:{exc.context_mark.column + 1})"
        if mark is not None and _char_at(text, mark.line, mark.column) == "\t":
            problem += TAB_HINT
        raise ManifestError(
            MALFORMED_YAML.format(source=source, line=line, column=column, problem=problem)
        ) from None
    return events


def _char_at(text: str, line: int, column: int) -> str:
    offset = TextIndex(text).offset(line, column)
    return text[offset] if 0 <= offset < len(text) else ""


def scalar_span(index: TextIndex, node: ScalarNode, source: str) -> tuple[int, int]:
    """Offsets of the scalar token itself: after any anchor (``&a``) or tag (``!!str``), quotes included."""
    if node.style in ("|", ">"):
        raise ManifestError(BLOCK_SCALAR.format(source=source, line=node.start_mark.line + 1))
    text = index.text
    start, end = index.start(node), index.end(node)
    while start < end and text[start] in "&!":
        while start < end and not text[start].isspace():
            start += 1
        while start < end:
            if text[start].isspace():
                start += 1
            elif text[start] == "#":
                while start < end and text[start] not in "\r\n":
                    start += 1
            else:
                break
    return start, end


def reads_as_non_string(value: str) -> bool:
    """Whether YAML 1.1 or 1.2 would read ``value``, written plain, as a null, bool, number or date."""
    return value == "" or _NON_STRING.match(value) is not None


def render_scalar(value: str, style: str | None, *, flow: bool = False) -> str:
    """``value`` written in the quoting ``style`` of the scalar it replaces, quoted if plain would not do.

    Inside flow collections (``{...}``, ``[...]``) a plain ``:`` confuses YAML 1.1 parsers, so quote.
    """
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    plain_ok = _PLAIN_SAFE.match(value) is not None and not (flow and ":" in value)
    if style == '"' or reads_as_non_string(value) or not plain_ok:
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


@dataclass(frozen=True)
class Patch:
    """Replace ``text[start:end]`` with ``replacement``."""

    start: int
    end: int
    replacement: str


def apply_patches(text: str, patches: Iterable[Patch]) -> str:
    """Splice from the end backwards so earlier offsets stay valid; overlapping patches are a bug."""
    ordered = sorted(set(patches), key=lambda p: (p.start, p.end))
    for before, after in itertools.pairwise(ordered):
        if after.start < before.end or (after.start == before.start == before.end == after.end):
            raise ManifestError(f"internal error: overlapping edits at offsets {before.start}-{after.end}")
    for patch in reversed(ordered):
        text = text[: patch.start] + patch.replacement + text[patch.end :]
    return text


def _first_difference(want: list[Any], got: list[Any]) -> int | None:
    """The number of the first event of ``got`` unlike its peer in ``want`` (None: skip), or None.

    Alike means the same kind, value, anchor, tag and quoting or flow style; document and stream
    events by kind alone. One loop without a tuple per event: ~1.3 ms for 12,000 events where
    building and comparing two lists of signatures took ~6.5 ms.
    """
    scalar, mapping, sequence, alias = ScalarEvent, MappingStartEvent, SequenceStartEvent, AliasEvent
    for number, (a, b) in enumerate(zip(want, got, strict=True)):
        if a is None:
            continue
        kind = a.__class__
        if kind is not b.__class__:
            return number
        if kind is scalar:
            if a.value != b.value or a.style != b.style or a.anchor != b.anchor:
                return number
        elif kind is mapping or kind is sequence:
            if a.flow_style != b.flow_style or a.anchor != b.anchor:
                return number
        elif kind is alias:
            if a.anchor != b.anchor:
                return number
            continue
        else:
            continue
        if a.ctag is not b.ctag and a.tag != b.tag:  # each parse makes its own Tag objects
            return number
    return None


def confirm(
    old: Parsed,
    new_text: str,
    *,
    source: str,
    expected: Mapping[int, str],
    appended: Mapping[int, tuple[str, str]],
) -> None:
    """Re-parse ``new_text``: its events must equal the old ones except where intended.

    ``expected`` maps the event number of a changed scalar to its new value; ``appended`` maps the
    event number of a mapping's end to the (key, value) pair added just before it. Scalars given a
    new value may change quoting too, but must read as that string. Raise ManifestError otherwise.
    """

    def fail(event: Any, what: str) -> ManifestError:
        where = f"line {event.start_mark.line + 1}: " if event is not None else ""
        return ManifestError(CONFIRM_FAILED.format(source=source, what=where + what))

    with paused_gc():
        try:
            new_events = parse_events(new_text, source)
        except ManifestError as exc:
            raise fail(None, f"the file no longer parses ({exc})") from None
        want: list[Any] = list(old.events)  # None where an event is checked by value instead
        checks = dict(expected)  # event number -> the string it must read as, renumbered below
        for number in sorted(appended, reverse=True):
            want[number:number] = [None, None]
            checks = {n + 2 if n >= number else n: value for n, value in checks.items()}
            checks.update({number: appended[number][0], number + 1: appended[number][1]})
        if len(new_events) != len(want):
            raise fail(None, "the structure of the file changed")
        for number, value in checks.items():
            event = new_events[number]
            reads_as_string = bool(getattr(event, "style", None)) or not reads_as_non_string(value)
            if not isinstance(event, ScalarEvent) or event.value != value or not reads_as_string:
                raise fail(event, f"it reads {getattr(event, 'value', None)!r}, not the string {value!r}")
            want[number] = None
        first = _first_difference(want, new_events)
        if first is not None:
            raise fail(new_events[first], "a value that should not change changed")


# --- editing --------------------------------------------------------------------------------------

EMPTY_VALUE = '{source}:{line}: cannot find where the empty value goes; write it as "" and retry'
CANNOT_APPEND = "{source}:{line}: cannot add {key} to this mapping; add `{key}:` to it by hand"
CLAIMED_TWICE = (
    "{source}:{line}: {first} sets this value to {first_value!r} and {second} to {second_value!r}; "
    "one value cannot hold both: give each its own value (a YAML anchor shared by two images, or two "
    "update entries naming the same value)"
)
_LINE_END = re.compile(r"\r\n|[\r\n]")


class Editor:
    """Collects edits to one text, then applies them and confirms the result."""

    def __init__(self, text: str, parsed: Parsed, source: str) -> None:
        self.index = TextIndex(text)
        self.parsed = parsed
        self.source = source
        self.patches: list[Patch] = []
        self.expected: dict[int, str] = {}
        self.appended: dict[int, tuple[str, str]] = {}
        self._claims: dict[tuple[int, str], tuple[str, str]] = {}  # (event, key) -> (value, who)

    def _claim(self, event: int, key: str, value: str, owner: str, line: int) -> bool:
        """True for a new edit; False for one already asked for; ManifestError for a different one."""
        claimed = self._claims.get((event, key))
        if claimed is None:
            self._claims[(event, key)] = (value, owner)
            return True
        if claimed[0] != value:
            raise ManifestError(
                CLAIMED_TWICE.format(
                    source=self.source,
                    line=line,
                    first=claimed[1] or "one edit",
                    first_value=claimed[0],
                    second=owner or "another edit",
                    second_value=value,
                )
            )
        return False

    def set(self, slot: Slot, value: str, owner: str = "") -> bool:
        """Give the scalar ``value`` in its own quoting style; False when it already holds it.

        Several edits may ask for the same value of one scalar (two matches through an alias, two
        update entries naming one file): it is made once. Asking for two values raises ManifestError.
        """
        node = slot.value
        line = node.start_mark.line + 1
        if not self._claim(node.event, "", value, owner, line):
            return False
        if node.value == value:
            return False
        text = self.index.text
        if is_plain(node) and node.value == "":
            # An empty value has no span of its own: write it right after the key's colon.
            position = self.index.end(slot.key) if slot.key is not None else len(text)
            while position < len(text) and text[position] in " \t":
                position += 1
            if position >= len(text) or text[position] != ":":
                raise ManifestError(EMPTY_VALUE.format(source=self.source, line=node.start_mark.line + 1))
            start = end = position + 1
            replacement = " " + render_scalar(value, node.style, flow=slot.flow)
        else:
            start, end = scalar_span(self.index, node, self.source)
            replacement = render_scalar(value, node.style, flow=slot.flow)
        self.patches.append(Patch(start, end, replacement))
        self.expected[node.event] = value
        return True

    def append(self, mapping: MappingNode, key: str, value: str, owner: str = "") -> bool:
        """Add ``key: value`` as the mapping's last pair, in its style and indentation.

        False when the same pair is already being added; another key or value raises ManifestError.
        """
        added = self.appended.get(mapping.end_event)
        at = mapping.start_mark.line + 1
        if added is not None and added[0] != key:
            both = f"{added[0]} and {key}"
            raise ManifestError(CANNOT_APPEND.format(source=self.source, line=at, key=both))
        if not self._claim(mapping.end_event, key, value, owner, at):
            return False
        last_key, last_value = mapping.value[-1]
        if not isinstance(last_value, ScalarNode) or last_value.style in ("|", ">"):
            line = mapping.start_mark.line + 1
            raise ManifestError(CANNOT_APPEND.format(source=self.source, line=line, key=key))
        _, end = scalar_span(self.index, last_value, self.source)
        if is_plain(last_value) and last_value.value == "":
            end = self.index.end(last_key)
        if mapping.flow_style:
            self.patches.append(Patch(end, end, f", {key}: {render_scalar(value, None, flow=True)}"))
        else:
            match = _LINE_END.search(self.index.text, end)
            position = match.start() if match else len(self.index.text)
            indent = " " * mapping.start_mark.column
            line = f"{self.index.newline_at(end)}{indent}{key}: {render_scalar(value, None)}"
            self.patches.append(Patch(position, position, line))
        self.appended[mapping.end_event] = (key, value)
        return True

    def result(self) -> str:
        """The edited text, confirmed by re-parsing; ManifestError rather than a wrong file."""
        new_text = apply_patches(self.index.text, self.patches)
        confirm(self.parsed, new_text, source=self.source, expected=self.expected, appended=self.appended)
        return new_text


__all__ = [
    "BLOCK_SCALAR",
    "CANNOT_APPEND",
    "CLAIMED_TWICE",
    "CONFIRM_FAILED",
    "EMPTY_VALUE",
    "MALFORMED_YAML",
    "TAB_HINT",
    "UNDEFINED_ALIAS",
    "Editor",
    "MappingNode",
    "Node",
    "Parsed",
    "Patch",
    "ScalarNode",
    "SequenceNode",
    "Slot",
    "TextIndex",
    "apply_patches",
    "confirm",
    "fields",
    "is_plain",
    "lookup",
    "parse",
    "parse_events",
    "paused_gc",
    "reads_as_non_string",
    "render_scalar",
    "scalar_slot",
    "scalar_span",
]
