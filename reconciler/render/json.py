"""The plan as JSON: the saved-plan document, masked unless `show_values`.

`plan --out` writes the document with its values (`reconciler.planfile`), since apply needs
them; printed to stdout, for a person or a log, every phone number, e-mail address and token
is masked unless `--show-values`, and the document says `"masked": true`, so that no one
applies a masked rendering by mistake (`read_plan` refuses it, saying what to use instead).
Both have the layout of `reconciler.plandoc`, one call per line, and are written as a
stream: a plan of 100,000 profiles is never held as one string.
"""

from __future__ import annotations

from typing import BinaryIO

from reconciler.plan import Plan
from reconciler.plandoc import blocks, document_lines


def write_json(plan: Plan, out: BinaryIO, *, show_values: bool = False,
               checksum: str | None = None) -> None:
    """Write the plan document to `out`, a block of lines at a time. `checksum`: the saved
    plan's, when it was just written (a masked rendering names it; else it is computed)."""
    for block in blocks(document_lines(plan, masked=not show_values, checksum=checksum)):
        out.write(block)
    out.flush()


def render_json(plan: Plan, *, show_values: bool = False) -> str:
    """The plan document as one string, ending with a newline: for small plans and tests;
    the CLI streams it with `write_json`."""
    return b"".join(document_lines(plan, masked=not show_values)).decode()
