"""Comments for `reconciler fmt`: found in the source, tied to what they describe, written back.

    find_comments(text) -> [Comment]           every comment, from libyaml's tokens
    slots_of(root) -> [Slot]                   every key and list item, with its position
    place(comments, slots) -> Placement        which comment goes above, beside or after what
    Placer(root, slots, moved).place(p)        into ruamel's comment attributes, once the
                                               document is in its final layout

Comments are tied by where they are written, not by ruamel's own attachment (a comment line
belongs to the node *before* it there), which would move a profile's comment to its
neighbour when profiles are sorted:
- a comment beside a key or list item belongs to it (beside the first key of a mapping item);
- full-line comments belong to the next key or item when indented no deeper than it, else
  to the end of the block they are indented in (`after`);
- the leading comments of the file, up to the last blank line above the first key, are its
  header and stay at the top.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import yaml
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.tokens import CommentToken

Container: TypeAlias = CommentedMap | CommentedSeq
Moved: TypeAlias = dict[tuple[int, Any], tuple[Container, Any]]
"""(id of a container, key) -> where that slot went: a token mapping that became the
shorthand string is now an item of its list."""
INDENT: Final = 2

# ---- comments in the source --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Comment:
    """One comment of a file, where it is written (0-based line and column)."""

    line: int
    column: int
    text: str  # from `#` on, trailing blanks removed
    eol: bool  # something precedes it on its line
    blank_before: bool  # a blank line is right above it


def find_comments(text: str) -> list[Comment]:
    """Every comment of `text`: what lies between libyaml's tokens, besides blanks, is one.

    Independent of ruamel, so that it can check what ruamel wrote.
    """
    lines = text.splitlines()
    found: list[Comment] = []
    position = (0, 0)
    loader = yaml.CSafeLoader(text)
    try:
        while (token := loader.get_token()) is not None:
            start = (token.start_mark.line, token.start_mark.column)
            found.extend(_gap_comments(lines, position, start))
            if isinstance(token, yaml.ScalarToken) and token.style in ("|", ">"):
                found.extend(_block_header_comment(lines, start))
            position = max(position, (token.end_mark.line, token.end_mark.column))
    finally:
        loader.dispose()
    found.extend(_gap_comments(lines, position, (len(lines), 0)))
    return found


def _gap_comments(lines: list[str], start: tuple[int, int], end: tuple[int, int]
                  ) -> Iterator[Comment]:
    """The comments between two tokens: a `#` there can only start one."""
    for line in range(start[0], min(end[0], len(lines) - 1) + 1):
        row = lines[line]
        first = start[1] if line == start[0] else 0
        last = end[1] if line == end[0] else len(row)
        column = row.find("#", first, last)
        if column >= 0:
            yield _comment(lines, line, column)


def _block_header_comment(lines: list[str], start: tuple[int, int]) -> Iterator[Comment]:
    """A comment after a block scalar's `|` or `>`, which libyaml counts as the scalar's."""
    row = lines[start[0]]
    header = row[start[1]:].split("#", 1)
    if len(header) == 2 and header[0][1:].strip(" -+0123456789") == "":
        yield _comment(lines, start[0], start[1] + len(header[0]))


def _comment(lines: list[str], line: int, column: int) -> Comment:
    row = lines[line]
    return Comment(line, column, row[column:].rstrip(), eol=bool(row[:column].strip()),
                   blank_before=line > 0 and not lines[line - 1].strip())


# ---- where each comment belongs ----------------------------------------------------------


@dataclass(slots=True)
class Slot:
    """A place a comment can belong to: a mapping's key, or a list's item."""

    line: int
    column: int
    container: Container
    key: Any
    parent: int | None  # the slot whose value `container` is
    depth: int


def slots_of(root: CommentedMap) -> list[Slot]:
    """Every key and list item of the document, in the order they are written (each before
    its children: `_place` bisects on their positions, and a parent's index is lower)."""
    found: list[Slot] = []
    stack: list[tuple[Iterator[tuple[Any, tuple[int, int]]], Container, int | None]] = []

    def enter(node: Any, parent: int | None) -> None:
        if isinstance(node, CommentedMap):
            stack.append((((key, node.lc.key(key)) for key in node), node, parent))
        elif isinstance(node, CommentedSeq):
            stack.append((((index, node.lc.item(index)) for index in range(len(node))),
                          node, parent))

    enter(root, None)
    while stack:
        children, container, parent = stack[-1]
        child = next(children, None)
        if child is None:
            stack.pop()
            continue
        key, (line, column) = child
        found.append(Slot(line, column, container, key, parent, len(stack)))
        enter(container[key], len(found) - 1)
    return found


@dataclass(slots=True)
class Placement:
    """Which comments go where: above, beside or after (the end of the block of) a slot."""

    header: list[Comment] = field(default_factory=list)
    before: dict[int, list[Comment]] = field(default_factory=dict)
    beside: dict[int, Comment] = field(default_factory=dict)
    after: dict[int, list[Comment]] = field(default_factory=dict)


def place(comments: list[Comment], slots: list[Slot]) -> Placement:
    """Tie each comment to a slot by where it is written (see the module docstring)."""
    placement = Placement()
    starts = [(slot.line, slot.column) for slot in slots]
    header_end = _header_end(comments, slots[0].line)
    placement.header = comments[:header_end]
    for comment in comments[header_end:]:
        here = bisect.bisect_left(starts, (comment.line, comment.column))
        if comment.eol:
            index = max(here - 1, 0)
            if index in placement.beside:
                placement.after.setdefault(index, []).append(comment)
            else:
                placement.beside[index] = comment
        elif here < len(slots) and comment.column <= slots[here].column:
            placement.before.setdefault(here, []).append(comment)
        else:
            index = max(here - 1, 0)
            while slots[index].column > comment.column and slots[index].parent is not None:
                index = slots[index].parent  # type: ignore[assignment]
            placement.after.setdefault(index, []).append(comment)
    return placement


def _header_end(comments: list[Comment], first_line: int) -> int:
    """How many leading comments are the file's header: those above the first key up to the
    last blank line before it (the rest describe that key and move with it)."""
    leading = [comment for comment in comments if comment.line < first_line]
    end = 0
    for index, comment in enumerate(leading):
        following = leading[index + 1].line if index + 1 < len(leading) else first_line
        if following - comment.line > 1:
            end = index + 1
    return end


# ---- writing the comments back -----------------------------------------------------------


def _walk(node: Any) -> Iterator[Container]:
    pending = [node]
    while pending:
        item = pending.pop()
        if isinstance(item, CommentedMap | CommentedSeq):
            yield item
            pending.extend(item.values() if isinstance(item, CommentedMap) else item)


def _columns(root: CommentedMap) -> dict[int, int]:
    """The column at which each container's keys (or list dashes) are written: 2 more than
    its parent's, whether a mapping or a list holds it."""
    columns = {id(root): 0}
    pending: list[Container] = [root]
    while pending:
        node = pending.pop()
        for child in node.values() if isinstance(node, CommentedMap) else node:
            if isinstance(child, CommentedMap | CommentedSeq):
                columns[id(child)] = columns[id(node)] + INDENT
                pending.append(child)
    return columns


def _token(text: str, column: int = 0) -> CommentToken:
    return CommentToken(text, CommentMark(column))


def _lines(comments: list[Comment], column: int) -> str:
    """Full-line comments at `column`, a blank line kept above each block that had one."""
    return "".join(("\n" if comment.blank_before else "") + " " * column + comment.text + "\n"
                   for comment in comments)


class Placer:
    """Writes the placed comments into ruamel's comment attributes of the final tree."""

    def __init__(self, root: CommentedMap, slots: list[Slot],
                 moved: Moved) -> None:
        self.root = root
        self.slots = slots
        self.moved = moved
        self.columns = _columns(root)
        self.trailing: dict[tuple[int, Any], list[tuple[int, str]]] = {}
        self.beside: dict[tuple[int, Any], str] = {}
        self.targets: Moved = {}

    def where(self, index: int) -> tuple[Container, Any]:
        slot = self.slots[index]
        return self.moved.get((id(slot.container), slot.key), (slot.container, slot.key))

    def place(self, placement: Placement) -> None:
        if placement.header:
            lines = _lines(placement.header, 0) + "\n"
            self.root.ca.comment = [None, [_token(lines)]]
        for index, comments in placement.before.items():
            container, key = self.where(index)
            column = self.columns[id(container)]
            items = container.ca.items.setdefault(key, [None, None, None, None])
            items[1] = [_token(_lines(comments, column))]
        for index, comment in placement.beside.items():
            container, key = self._line_of(*self.where(index))
            self.beside[id(container), key] = comment.text
            self.targets[id(container), key] = (container, key)
        for index, comments in placement.after.items():
            container, key = self.where(index)
            last = self._last(container, key)
            column = self.columns[id(container)]
            self.trailing.setdefault((id(last[0]), last[1]), []).append(
                (self.slots[index].depth, _lines(comments, column)))
            self.targets[id(last[0]), last[1]] = last
        for ident, (container, key) in self.targets.items():
            self._end_of_line(container, key, ident)

    def _line_of(self, container: Container, key: Any) -> tuple[Container, Any]:
        """Where a comment beside a list item goes: beside the first key of a mapping item."""
        value = container[key]
        if isinstance(container, CommentedSeq) and isinstance(value, CommentedMap) and value:
            return value, next(iter(value))
        return container, key

    def _last(self, container: Container, key: Any) -> tuple[Container, Any]:
        """The slot written last within the block of (container, key)."""
        value = container[key]
        while isinstance(value, CommentedMap | CommentedSeq) and value:
            container, key = value, (next(reversed(value)) if isinstance(value, CommentedMap)
                                     else len(value) - 1)
            value = container[key]
        return container, key

    def _end_of_line(self, container: Container, key: Any, ident: tuple[int, Any]) -> None:
        text = self.beside.get(ident)
        after = "".join(lines for _, lines in sorted(self.trailing.get(ident, []),
                                                       key=lambda item: -item[0]))
        value = (" " + text if text else "") + "\n" + after
        items = container.ca.items.setdefault(key, [None, None, None, None])
        items[0 if isinstance(container, CommentedSeq) else 2] = _token(value)
        empty = container[key]
        if isinstance(empty, CommentedMap | CommentedSeq):
            # ruamel writes the comment after `{}` or `[]` from there (as it reads it)
            empty.ca.comment = [_token(value), None]


def clear_comments(root: CommentedMap) -> None:
    for node in _walk(root):
        node.ca.comment = None
        node.ca.items.clear()
        node.ca.end = []
        if node:
            node.fa.set_block_style()
        else:
            node.fa.set_flow_style()  # `{}` and `[]`
