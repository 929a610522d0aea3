"""The precise path: a document built from PyYAML's event stream, and where things are in it.

This path is authoritative: every Problem the loader reports comes from here. It walks the
events of libyaml's parser (`CSafeLoader.get_event`) itself instead of letting PyYAML
construct objects, because the desired state needs what PyYAML's constructor throws away or
gets wrong for us:

- keys as their source text: `0123:` is the distinct_id "0123", never the number 123;
- plain scalars resolved by the YAML 1.2 core schema (`scalars.resolve_plain`), where
  PyYAML applies YAML 1.1 (`yes` a boolean, `0123` octal, `2024-01-01` a date);
- duplicate mapping keys as errors that name both places (PyYAML keeps the last one);
- tags other than `!!str` reported as unsupported rather than applied;
- aliases resolved to the anchored object itself, under an expansion budget counted while
  building (nodes and characters of text repeated: `ALIAS_BUDGET`, `ALIAS_TEXT_BUDGET`), so
  that a "billion laughs" file cannot exhaust memory in the checks, the schema validation or
  the digest; past the budget the file is given up with one problem, like a syntax error.
It is also about nine times faster than PyYAML's own constructor.

Positions are found in a second, cheaper pass (`locate.py`), and only when a file has
problems: recording a line and column for every node of a 100,000-profile file would double
the time of this pass, to serve the rare file that has problems.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from reconciler.config.findings import YamlPath, YamlProblem
from reconciler.config.limits import plain, shown
from reconciler.config.scalars import resolve_plain

_STR_TAG: Final = "tag:yaml.org,2002:str"
_MAP_TAGS: Final = frozenset({"!", "tag:yaml.org,2002:map"})
_SEQ_TAGS: Final = frozenset({"!", "tag:yaml.org,2002:seq"})
ALIAS_BUDGET: Final = 1_000_000
"""Most nodes that aliases may repeat in one file: far above any honest use."""
ALIAS_TEXT_BUDGET: Final = 32_000_000
"""Most characters of text (keys and scalars) that aliases may repeat in one file.

The node budget alone does not bound memory: a million aliases of one 3 KB text cost nothing
here (they share one object), but the checks' messages, the schema validation and the digest
copy each repetition: 3 GB. 32 million characters are more than the whole 100,000-profile
benchmark file holds (24 MB), and far above any honest use of aliases."""


class _OverBudget(Exception):
    """Aliases repeat more than the budget allows: the document is given up."""


class _Marker:
    """A sentinel for the state of a mapping between its keys and values."""


_AWAITING_KEY: Final = _Marker()
SKIP: Final = _Marker()  # the key was rejected: drop its value

_Event = Any  # PyYAML's event classes carry untyped attributes


@dataclass(frozen=True, slots=True)
class Anchor:
    value: Any
    text: str | None  # the source text when the anchored node is a scalar
    size: int  # nodes an alias to it repeats
    characters: int = 0  # characters of text (keys and scalars) an alias to it repeats


class _Frame:
    """A mapping or list being filled, and (for a mapping) the key whose value comes next."""

    __slots__ = ("anchor", "first_node", "is_mapping", "key", "node", "path")

    def __init__(
        self, node: dict[str, Any] | list[Any], path: YamlPath, anchor: str | None, first: int
    ) -> None:
        self.node = node
        self.path = path
        self.is_mapping = type(node) is dict
        self.anchor = anchor
        self.first_node = first
        self.key: str | _Marker = _AWAITING_KEY


@dataclass(slots=True)
class PreciseDocument:
    """One file's document as plain data, with what parsing it found wrong."""

    data: Any = None
    has_document: bool = False
    complete: bool = True  # False after a syntax error: `data` is only a prefix of the file
    sources: dict[YamlPath, str] = field(default_factory=dict)  # text of non-text plain scalars
    problems: list[YamlProblem] = field(default_factory=list)


def _shown_tag(tag: str) -> str:
    if tag.startswith("tag:yaml.org"):
        tag = "!!" + tag.removeprefix("tag:yaml.org,2002:")
    return plain(tag) if tag else '""'  # a tag may hold any character, %-escaped


def key_text(event: _Event, anchors: dict[str, Anchor]) -> str | None:
    """The text a key event stands for, or None when it cannot be a key.

    Shared by `parse_precise` and `locate.locate`, so that both follow the same keys.
    """
    if type(event) is yaml.ScalarEvent:
        if event.value == "<<" and event.style == "" and event.tag is None:
            return None  # a merge key: rejected, see _Builder.key
        return str(event.value)
    if type(event) is yaml.AliasEvent:
        anchor = anchors.get(str(event.anchor))
        return anchor.text if anchor is not None else None
    return None


class _Builder:
    """Turns events into plain data; one instance per file.

    `events` handles the common events inline (it runs once per event, millions of times
    for a large file); anything unusual (tags, anchors, aliases, duplicate or complex keys)
    goes to a helper method.
    """

    def __init__(self) -> None:
        self.doc = PreciseDocument()
        self.stack: list[_Frame] = []
        self.anchors: dict[str, Anchor] = {}
        self.nodes = 0
        self.repeated = 0
        self.repeated_characters = 0
        self.characters_of: dict[int, int] = {}  # id of an anchored container -> its text
        self.skip_depth = 0  # > 0 while inside a node that is being dropped

    def problem(self, event: _Event, message: str, first: YamlPath | None = None) -> None:
        mark = event.start_mark
        self.doc.problems.append(YamlProblem(mark.line + 1, mark.column + 1, message, first))

    def events(self, next_event: Callable[[], _Event]) -> None:
        scalar, alias = yaml.ScalarEvent, yaml.AliasEvent
        mapping, sequence = yaml.MappingStartEvent, yaml.SequenceStartEvent
        mapping_end, sequence_end = yaml.MappingEndEvent, yaml.SequenceEndEvent
        sources, stack = self.doc.sources, self.stack
        documents = 0
        while (event := next_event()) is not None:
            kind = type(event)
            is_container = kind is mapping or kind is sequence
            if is_container or kind is scalar or kind is alias:
                self.nodes += 1
                if self.skip_depth:
                    self.skip_depth += is_container
                    continue
                parent = stack[-1] if stack else None
                if parent is not None and parent.is_mapping and parent.key is _AWAITING_KEY:
                    if kind is scalar and event.tag is None and event.anchor is None:
                        text = event.value
                        if text not in parent.node and text != "<<":
                            parent.key = text
                            continue
                    self.key(parent, event, is_container)
                    continue
                if parent is None:
                    path: YamlPath = ()
                elif parent.is_mapping:
                    if parent.key is SKIP:
                        parent.key = _AWAITING_KEY
                        self.skip_depth = int(is_container)
                        continue
                    path = (*parent.path, parent.key)  # type: ignore[arg-type]
                else:
                    path = (*parent.path, len(parent.node))

                if is_container:
                    node: dict[str, Any] | list[Any] = {} if kind is mapping else []
                    if event.tag is not None:
                        self.container_tag(event)
                    value: Any = node
                elif kind is alias:
                    value = self.alias(event, path)
                elif event.tag is None and event.anchor is None:
                    value = text = event.value
                    if event.style == "":  # libyaml's style for a plain scalar
                        value = resolve_plain(text)
                        if type(value) is not str:
                            sources[path] = text
                else:
                    value = self.scalar(event, path)

                if parent is None:
                    self.doc.data = value
                elif parent.is_mapping:
                    parent.node[parent.key] = value  # type: ignore[index,call-overload]
                    parent.key = _AWAITING_KEY
                else:
                    parent.node.append(value)  # type: ignore[union-attr]
                if is_container:
                    stack.append(_Frame(node, path, event.anchor, self.nodes))
            elif kind is mapping_end or kind is sequence_end:
                if self.skip_depth:
                    self.skip_depth -= 1
                    continue
                frame = stack.pop()
                if frame.anchor:
                    size = self.nodes - frame.first_node
                    characters = self.characters(frame.node)
                    self.anchors[frame.anchor] = Anchor(frame.node, None, size, characters)
            elif kind is yaml.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    self.problem(
                        event,
                        "a second YAML document (after ---); each file holds one: "
                        "move it to a file of its own",
                    )
                    return
                self.doc.has_document = True

    def scalar(self, event: _Event, path: YamlPath) -> Any:
        """A scalar value with a tag or an anchor."""
        tag, text = event.tag, event.value
        value: Any = text
        if tag is None:
            if event.style == "":
                value = resolve_plain(text)
                if type(value) is not str:
                    self.doc.sources[path] = text
        elif tag != "!" and tag != _STR_TAG:
            self.problem(
                event,
                f"tag {_shown_tag(tag)} is not supported; remove it "
                "(quote the value to make it text)",
            )
        if event.anchor:
            self.anchors[event.anchor] = Anchor(value, text, 1, len(text))
        return value

    def characters(self, node: dict[str, Any] | list[Any]) -> int:
        """The characters of text in an anchored container, aliases in it expanded.

        Each anchored container is measured once, when it ends: a walk stops at the anchored
        containers inside it (aliased or not), whose measure is known, so the walks of a
        file visit each node at most once. Only files with anchors pay for this.
        """
        known = self.characters_of
        total = 0
        pending: list[Any] = [node]
        while pending:
            item = pending.pop()
            kind = type(item)
            if kind is str:
                total += len(item)
            elif kind is dict or kind is list:
                if item is not node and id(item) in known:
                    total += known[id(item)]
                elif kind is dict:
                    total += sum(map(len, item))
                    pending.extend(item.values())
                else:
                    pending.extend(item)
        known[id(node)] = total
        return total

    def container_tag(self, event: _Event) -> None:
        allowed = _MAP_TAGS if type(event) is yaml.MappingStartEvent else _SEQ_TAGS
        if event.tag not in allowed:
            self.problem(event, f"tag {_shown_tag(event.tag)} is not supported here")

    def alias(self, event: _Event, path: YamlPath) -> Any:
        anchor = self.anchors.get(event.anchor)
        if anchor is None:
            self.problem(event, f"alias *{event.anchor} has no anchor &{event.anchor} before it")
            return None
        self.repeated += anchor.size
        self.nodes += anchor.size  # so that an anchor holding aliases counts them expanded
        self.repeated_characters += anchor.characters
        if self.repeated > ALIAS_BUDGET or self.repeated_characters > ALIAS_TEXT_BUDGET:
            what = (
                f"{ALIAS_BUDGET:,} nodes" if self.repeated > ALIAS_BUDGET
                else f"{ALIAS_TEXT_BUDGET:,} characters of text"
            )
            self.problem(event, f"aliases repeat more than {what}; write the data out")
            raise _OverBudget
        if anchor.text is not None and type(anchor.value) is not str:
            self.doc.sources[path] = anchor.text
        return anchor.value

    def key(self, parent: _Frame, event: _Event, is_container: bool) -> None:
        """A key that is not a plain, new, untagged, unanchored text: report why, or take it."""
        parent.key = SKIP
        if is_container:
            self.skip_depth = 1
            noun = "a mapping" if type(event) is yaml.MappingStartEvent else "a list"
            self.problem(event, f"a key must be text, not {noun}")
            return
        text = key_text(event, self.anchors)
        if type(event) is yaml.ScalarEvent:
            if event.tag is not None and event.tag != "!" and event.tag != _STR_TAG:
                self.problem(event, f"tag {_shown_tag(event.tag)} is not supported on a key")
            if event.anchor:
                self.anchors[event.anchor] = Anchor(event.value, event.value, 1)
            if text is None:
                self.problem(event, "merge keys (<<) are not supported; write the keys out")
                return
        elif text is None:
            self.problem(event, f"a key must be text; *{event.anchor} is not an anchored text")
            return
        assert isinstance(parent.node, dict) and text is not None
        if text in parent.node:
            what = "distinct_id" if parent.path == ("profiles",) else "key"
            self.problem(event, f"{what} {shown(text)} is declared twice", (*parent.path, text))
            return
        parent.key = text


def _first_unreadable_character(text: str) -> tuple[int, int]:
    """Where libyaml's reader stopped (its own offset counts bytes of its internal buffer)."""
    for index, char in enumerate(text):
        code = ord(char)
        printable = (
            code in (0x09, 0x0A, 0x0D, 0x85)
            or 0x20 <= code <= 0x7E
            or 0xA0 <= code <= 0xD7FF
            or 0xE000 <= code <= 0xFFFD
            or code >= 0x10000
        ) and (code != 0xFEFF or index == 0)
        if not printable:
            line = text.count("\n", 0, index) + 1
            return line, index - (text.rfind("\n", 0, index) + 1) + 1
    return 0, 0


def _is_a_tab(text: str, line: int, column: int) -> bool:
    """Whether the character at 0-based `line` and `column` is a tab that only blanks
    precede on its line: a tab used as indentation."""
    lines = text.split("\n", line + 1)
    if line >= len(lines):
        return False
    row = lines[line]
    return column < len(row) and row[column] == "\t" and not row[:column].strip(" \t")


def parse_precise(text: str) -> PreciseDocument:
    """Build `text`'s document; problems of the YAML itself land in `.problems`."""
    builder = _Builder()
    loader = yaml.CSafeLoader(text)
    try:
        builder.events(loader.get_event)
    except _OverBudget:
        # Like a syntax error: what was built is only a part of the document, and checking
        # it would report every alias after the budget as a missing value.
        builder.doc.complete = False
    except yaml.MarkedYAMLError as error:
        builder.doc.complete = False
        mark = error.problem_mark or error.context_mark
        message = f"invalid YAML: {error.problem or error.context}"
        if error.context and error.problem:
            message += f" ({error.context})"
        if mark is not None and _is_a_tab(text, mark.line, mark.column):
            # libyaml only says "found character that cannot start any token"
            message = ("invalid YAML: a tab indents this line; YAML indents with spaces "
                       "only: replace the tab with spaces")
        line, column = (mark.line + 1, mark.column + 1) if mark is not None else (0, 0)
        builder.doc.problems.append(YamlProblem(line, column, message))
    except yaml.YAMLError as error:
        builder.doc.complete = False
        reason = getattr(error, "reason", None) or str(error)
        character = getattr(error, "character", None)
        if isinstance(character, int):
            reason = f"character U+{character:04X} is not allowed: {reason}"
        line, column = _first_unreadable_character(text)
        builder.doc.problems.append(YamlProblem(line, column, f"invalid YAML: {reason}"))
    finally:
        loader.dispose()
    return builder.doc
