"""How counts are worded for people: `1 call`, `2 calls`, `1 recorded entry`.

The one place every count a person reads is worded, so that no output says `1 calls` or
hedges with `profile(s)`; the core and the renderers alike use it.
"""

from __future__ import annotations


def plural(count: int, singular: str, many: str | None = None) -> str:
    """`1 call`, `2 calls`, `1 recorded entry`, `2 recorded entries`."""
    return f"{count} {noun(count, singular, many)}"


def noun(count: int, singular: str, many: str | None = None) -> str:
    """`singular` for a count of 1, else its plural: `many` when given (`entries`), else
    `singular` + "s"; for a count written in another way (`1,000 more profiles`)."""
    return singular if count == 1 else many or singular + "s"
