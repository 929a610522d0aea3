"""The plan as JSON: the saved-plan document, masked unless `show_values`.

`plan --out` writes the document with its values (`reconciler.planfile`), since apply needs
them; printed to stdout, for a person or a log, every phone number, e-mail address and token
is masked unless `--show-values`, and the document says `"masked": true`, so that no one
applies a masked rendering by mistake (`read_plan` refuses it, saying what to use instead).
"""

from __future__ import annotations

from typing import Any

import orjson

from reconciler.mask import MASKED, mask_change_json, mask_request
from reconciler.plan import Plan


def render_json(plan: Plan, *, show_values: bool = False) -> str:
    """The plan document with sorted keys and an indent of 2, ending with a newline."""
    document = plan.to_json()
    if not show_values:
        document = masked_plan(document)
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    return orjson.dumps(document, option=options).decode() + "\n"


def masked_plan(document: dict[str, Any]) -> dict[str, Any]:
    """A plan document with every value masked, marked `"masked": true`. Its checksum is
    the saved plan's, so a reviewer can tell which saved plan it shows."""
    masked = dict(document)
    masked["calls"] = [{**call, "body": mask_request(call["body"]),
                        "changes": [mask_change_json(change) for change in call["changes"]]}
                       for call in document["calls"]]
    if "ownership" in document:  # removals name values too
        masked["ownership"] = {name: {**policy, "remove": {
            channel: MASKED for channel in policy["remove"]}}
            for name, policy in document["ownership"].items()}
    masked["masked"] = True
    return masked
