"""Counts as people read them: singular for one, plural otherwise, never `(s)`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from reconciler.config import Config
from reconciler.core import make_plan
from reconciler.model import ChannelData
from reconciler.ownership import Mode, Ownership, Policy
from reconciler.state import State
from reconciler.words import noun, plural


def test_plural_and_noun_word_one_and_many() -> None:
    assert plural(1, "call") == "1 call"
    assert plural(2, "call") == "2 calls"
    assert plural(0, "recorded entry", "recorded entries") == "0 recorded entries"
    assert noun(1, "is", "are") == "is" and noun(3, "is", "are") == "are"


def _plan_keeping(app_tokens: int) -> Any:
    """A plan of one profile whose owned push channel holds `app_tokens` tokens the app
    wrote: kept, and counted in a warning."""
    ownership = Ownership(Policy({"push": Mode.OWNED}))
    declared = ChannelData.from_json({"push": [{"token": "ours"}]})
    recorded = ChannelData.from_json({"push": [{"token": "ours"}] + [
        {"token": f"app-{index}"} for index in range(app_tokens)]})
    config = Config("FYWORDS001", "live", {"u": declared}, ("x.yaml",), ownership)
    state = dataclasses.replace(State.new("FYWORDS001", "live"), profiles={"u": recorded},
                                managed={"u": frozenset({("push", "ours")})})
    return make_plan(config, state)


def test_the_kept_entries_warning_is_worded_for_one_and_for_many() -> None:
    (one,) = _plan_keeping(1).warnings
    assert one.startswith("1 recorded entry written by others (the app, the dashboard) is kept")
    assert one.endswith("marks it")
    (two,) = _plan_keeping(2).warnings
    assert two.startswith("2 recorded entries written by others (the app, the dashboard) are "
                          "kept")
    assert two.endswith("marks them")


def test_no_message_of_the_package_hedges_a_count_with_parentheses() -> None:
    package = Path(__file__).parent.parent / "reconciler"
    hedged = [f"{path.relative_to(package)}:{number}"
              for path in package.rglob("*.py")
              if "sandbox" not in path.parts and path.name != "sandbox_cmd.py"  # Fyno's texts
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if "(s)" in line and "http(s)" not in line and "`profile(s)`" not in line]
    assert hedged == []
