"""The plan as JSON: exactly the saved-plan document, full values and checksum included.

This is what `plan --out` writes and `apply PLANFILE` reads back (`schemas/plan.schema.json`),
so nothing here is masked: apply needs the real values.
"""

from __future__ import annotations

import orjson

from reconciler.plan import Plan


def render_json(plan: Plan) -> str:
    """`plan.to_json()` with sorted keys and an indent of 2, ending with a newline."""
    options = orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS
    return orjson.dumps(plan.to_json(), option=options).decode() + "\n"
