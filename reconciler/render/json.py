"""The plan as JSON: the saved-plan document, masked unless `show_values`.

`plan --out` writes the document with its values (`reconciler.planfile`), since apply needs
them; printed to stdout, for a person or a log, every phone number, e-mail address and token
is masked unless `--show-values`, and the document says `"masked": true`, so that no one
applies a masked rendering by mistake (`read_plan` refuses it, saying what to use instead).
Both have the layout of `reconciler.plandoc`, one call per line, and are written as a
stream: a plan of 100,000 profiles is never held as one string. The plans one run made for
several workspace/version pairs are rendered as one document, as they are saved.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import BinaryIO

from reconciler.plan import Plan
from reconciler.plandoc import blocks, document_lines


def write_json(plans: Plan | Sequence[Plan], out: BinaryIO, *, show_values: bool = False,
               checksum: str | None = None, part: range | None = None) -> None:
    """Write the document of `plans` (one plan, or one per workspace/version pair) to `out`,
    a block of lines at a time. `checksum`: the saved plan's, when it was just written (a
    masked rendering names it; else it is computed); `part`: only the calls it holds, as
    `document_lines` writes them."""
    for block in blocks(document_lines(plans, masked=not show_values, checksum=checksum,
                                       part=part)):
        out.write(block)
    out.flush()


def render_json(plans: Plan | Sequence[Plan], *, show_values: bool = False) -> str:
    """The document of `plans` as one string, ending with a newline: for small plans and
    tests; the CLI streams it with `write_json`."""
    return b"".join(document_lines(plans, masked=not show_values)).decode()
