"""Where paths of a document are in its text: the second, cheaper pass of the precise path.

`parse_precise` records no positions: a line and column for every node of a 100,000-profile
file would double its time, to serve the rare file that has problems. When a file has
problems, `locate` walks its events again, descending only into the nodes on the way to the
paths it is asked for, and follows the same keys as `parse_precise` (through the shared
`key_text`: the first occurrence of a key wins, rejected keys lead nowhere).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import yaml

from reconciler.config.findings import Mark, Marks, YamlPath
from reconciler.config.precise import SKIP, Anchor, key_text

_Event = Any


def locate(text: str, paths: Iterable[YamlPath]) -> Marks:
    """Where each of `paths` (keys and values) starts in `text`, which parsed without error.

    Walks the events again, but descends only into nodes that lead to a wanted path.
    """
    wanted = set(paths)
    leads = {path[:end] for path in wanted for end in range(len(path) + 1)}
    marks: dict[YamlPath, Mark] = {}
    anchors: dict[str, Anchor] = {}  # only texts matter here: they can be keys
    # Each frame: [path, is_mapping, next key or None, its mark, list index]
    stack: list[list[Any]] = []
    skip_depth = 0
    loader = yaml.CSafeLoader(text)
    next_event: Callable[[], _Event] = loader.get_event
    try:
        while (event := next_event()) is not None:
            kind = type(event)
            is_container = kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent
            if is_container or kind is yaml.ScalarEvent or kind is yaml.AliasEvent:
                if skip_depth:
                    skip_depth += is_container
                    continue
                if kind is yaml.ScalarEvent and event.anchor:
                    anchors[event.anchor] = Anchor(None, event.value, 1)
                mark = (event.start_mark.line + 1, event.start_mark.column + 1)
                if not stack:
                    path: YamlPath = ()
                    key_mark = mark
                else:
                    frame = stack[-1]
                    if frame[1] and frame[2] is None:  # this node is a key
                        text_of_key = None if is_container else key_text(event, anchors)
                        frame[2] = SKIP if text_of_key is None else text_of_key  # "" is a key
                        frame[3] = mark
                        skip_depth = int(is_container)
                        continue
                    if frame[1]:
                        key, key_mark = frame[2], frame[3]
                        frame[2] = None
                        if key is SKIP:
                            skip_depth = int(is_container)
                            continue
                        path = (*frame[0], key)
                    else:
                        path = (*frame[0], frame[4])
                        frame[4] += 1
                        key_mark = mark
                # Ancestors too: a path with no mark of its own is shown at the nearest one.
                if path in leads and path not in marks:
                    marks[path] = (*key_mark, *mark)
                if is_container:
                    if path in leads and (path not in marks or marks[path][2:] == mark):
                        stack.append([path, kind is yaml.MappingStartEvent, None, None, 0])
                    else:
                        skip_depth = 1
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                if skip_depth:
                    skip_depth -= 1
                else:
                    stack.pop()
            elif kind is yaml.DocumentEndEvent:
                break
    finally:
        loader.dispose()
    return Marks(marks)
